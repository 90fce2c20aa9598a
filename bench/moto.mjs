// bench/moto.mjs: a moto server for the benchmarks, started exactly as the tests start theirs
// (test/support/moto-server.mjs: behind the same fidelity wrapper, on a free port, killed when
// this process exits however it exits). Without the wrapper's Python, plain moto_server runs and
// the figures are not comparable (a warning says so).
//
//   const moto = await startMoto();   // { endpoint, faithful, stop() }; throws when moto is missing
//
// Never real AWS: an AWS_ENDPOINT_URL naming AWS is refused; the SDK gets dummy credentials.
import { launchMoto, onPath, REGION, refuseRealAws, setSdkEnv } from '../test/support/moto-server.mjs';

export { REGION, setSdkEnv };

export async function startMoto() {
  refuseRealAws(process.env.AWS_ENDPOINT_URL, 'the benchmarks');
  if (!onPath('moto_server')) throw new Error("moto_server is not installed: pip install 'moto[server]'");
  setSdkEnv();
  for (let tries = 0; tries < 3; tries++) {
    const m = await launchMoto();
    if (m) {
      if (!m.faithful) console.warn('bench: fidelity wrapper not available; running plain moto_server (figures not comparable)');
      return m;
    }
  }
  throw new Error('moto_server did not start (set GQ_MOTO_LOG=/tmp/moto.log to see why)');
}
