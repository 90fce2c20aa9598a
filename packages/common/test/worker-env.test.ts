import { describe, expect, it } from 'vitest';
import { HELD_CA_CERTS, taskBaseEnv, workerEnv } from '../src/worker-env.js';

describe('a local worker starts without NODE_EXTRA_CA_CERTS; its tasks get it back', () => {
  it('holds the variable for the worker and puts it back, unchanged, for the tasks', () => {
    const env = { PATH: '/bin', NODE_EXTRA_CA_CERTS: '/etc/ca.pem' };
    const w = workerEnv(env);
    expect(w).toEqual({ PATH: '/bin', [HELD_CA_CERTS]: '/etc/ca.pem' });
    expect(env.NODE_EXTRA_CA_CERTS).toBe('/etc/ca.pem'); // the caller's own is untouched
    expect(taskBaseEnv(w)).toEqual(env);
  });

  it('an empty value is a value: kept as it was', () => {
    expect(taskBaseEnv(workerEnv({ NODE_EXTRA_CA_CERTS: '' }))).toEqual({ NODE_EXTRA_CA_CERTS: '' });
  });

  it('without the variable both are the identity (an EC2 agent, a worker started by a worker)', () => {
    const env = { PATH: '/bin' };
    expect(workerEnv(env)).toBe(env);
    expect(taskBaseEnv(env)).toEqual(env);
    const held = { PATH: '/bin', [HELD_CA_CERTS]: '/x.pem' };
    expect(workerEnv(held)).toBe(held); // a worker's own environment passes its held value on
  });
});
