// bench/counting-proxy: an HTTP proxy in front of moto that forwards everything as it is and counts
// each request by client and by "Service.Operation":
//
//   service    the SigV4 credential scope it was signed with (Authorization: ... Credential=
//              KEY/DATE/REGION/<service>/aws4_request, or X-Amz-Credential of a presigned URL);
//   operation  X-Amz-Target for the JSON protocols (DynamoDB_20120810.GetItem, AmazonSQS.SendMessage),
//              Action= of the form body or query for the query protocols (EC2, Auto Scaling, STS,
//              CloudFormation, SQS query), and for S3 the REST call read off method + path + query;
//   client     the access key id of the signature, named through `clients` ({ key: name }); any
//              other key counts as `others` (e.g. each test instance has its own, from its IMDS).
//
// Counts are of HTTP requests, so an SDK retry counts twice (compare with CallCounter.requests()).
//
//   const p = await startCountingProxy('http://127.0.0.1:5000', { clients: { testing: 'runtime' } });
//   ... AWS_ENDPOINT_URL=p.url ...
//   p.counts()   // { submitter: { 'DynamoDB.GetItem': 2, ... }, others: {...} }
//   await p.close()
import { Agent, createServer, request } from 'node:http';

/** "sqs" → "SQS" etc., to match CallCounter's service names. */
const SERVICE_NAMES = {
  sqs: 'SQS',
  dynamodb: 'DynamoDB',
  s3: 'S3',
  autoscaling: 'AutoScaling',
  ec2: 'EC2',
  sts: 'STS',
  cloudformation: 'CloudFormation',
};

function scopeOf(req, url) {
  const auth = req.headers.authorization ?? '';
  const m = /Credential=([^/,\s]+)\/[^/]+\/[^/]+\/([^/]+)\/aws4_request/.exec(auth);
  if (m) return { key: m[1], service: m[2] };
  const cred = url.searchParams.get('X-Amz-Credential');
  if (cred) {
    const [key, , , service] = cred.split('/');
    return { key, service };
  }
  return { key: undefined, service: undefined };
}

/** The S3 REST operation of a path-style request. */
function s3Operation(method, url) {
  const parts = url.pathname.split('/').filter(Boolean);
  const q = url.searchParams;
  const onObject = parts.length >= 2;
  if (!onObject) {
    if (method === 'GET' && (q.get('list-type') === '2')) return 'ListObjectsV2';
    if (method === 'GET' && q.has('uploads')) return 'ListMultipartUploads';
    if (method === 'GET' && q.has('location')) return 'GetBucketLocation';
    if (method === 'GET') return parts.length === 0 ? 'ListBuckets' : 'ListObjects';
    if (method === 'POST' && q.has('delete')) return 'DeleteObjects';
    if (method === 'HEAD') return 'HeadBucket';
    if (method === 'PUT') return 'PutBucket' + ([...q.keys()][0] ?? '');
    if (method === 'DELETE') return 'DeleteBucket';
    return `${method} bucket`;
  }
  if (method === 'PUT' && q.has('partNumber')) return 'UploadPart';
  if (method === 'POST' && q.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'POST' && q.has('uploadId')) return 'CompleteMultipartUpload';
  if (method === 'PUT' && q.has('tagging')) return 'PutObjectTagging';
  return { GET: 'GetObject', PUT: 'PutObject', HEAD: 'HeadObject', DELETE: 'DeleteObject' }[method] ?? `${method} object`;
}

export async function startCountingProxy(target, opts = {}) {
  const upstream = new URL(target);
  const names = opts.clients ?? {};
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  let counts = new Map();
  const bump = (who, op) => {
    let m = counts.get(who);
    if (!m) counts.set(who, (m = new Map()));
    m.set(op, (m.get(op) ?? 0) + 1);
  };

  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url, 'http://proxy');
      const { key, service } = scopeOf(req, url);
      const svc = SERVICE_NAMES[service] ?? service ?? 'unsigned';
      let op;
      const target = req.headers['x-amz-target'];
      if (typeof target === 'string' && target.includes('.')) op = target.slice(target.lastIndexOf('.') + 1);
      else if (service === 's3') op = s3Operation(req.method, url);
      else {
        const form = (req.headers['content-type'] ?? '').includes('x-www-form-urlencoded') ? new URLSearchParams(body.toString('utf8')) : undefined;
        op = form?.get('Action') ?? url.searchParams.get('Action') ?? `${req.method} ${url.pathname}`;
      }
      if (!url.pathname.startsWith('/moto-api')) bump(key === undefined ? 'unsigned' : (names[key] ?? 'others'), `${svc}.${op}`);

      const up = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
          agent,
        },
        (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
        },
      );
      up.on('error', (e) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`counting proxy: ${e.message}`);
      });
      up.end(body);
    });
  });
  // Idle keep-alive sockets of the SDK must not be cut under it (that would add retries).
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 130_000;
  server.requestTimeout = 0;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    /** { client: { "Service.Operation": requests } } */
    counts: () => Object.fromEntries([...counts].map(([who, m]) => [who, Object.fromEntries(m)])),
    reset() {
      counts = new Map();
    },
    async close() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
      agent.destroy();
    },
  };
}
