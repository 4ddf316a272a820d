import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { CNI_ADD_PATH, type CniAddRequest, type CniAddResponse } from '../../api/cni.js';
import type { ClusterPod } from '../../cluster/resources.js';
import { cgroupId } from '../../os/cgroup.js';
import type { Logger } from '../../telemetry/logger.js';
import type { PodCgroupResolver } from '../pod-cgroups.js';
import { desiredEnrollments } from './enrollment.js';
import type { ExclusionContext } from './enrollment-exclusion.js';
import type { EnrollmentTarget } from './enrollment-sync.js';

async function readJson(req: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error(`request body over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/**
 * The node agent's CNI endpoint, on a Unix socket: enrolls a pod before its containers start, so that
 * not one of its connections leaves unredirected. The answer comes only once the kernel map holds it.
 */
export function startCniServer(
  socketPath: string,
  ctx: ExclusionContext,
  cgroups: PodCgroupResolver,
  target: EnrollmentTarget,
  onEnrolled: (id: bigint, pod: string, ips: readonly string[]) => Promise<void>,
  log: Logger,
): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== CNI_ADD_PATH)
      return reply(res, 404, { error: `POST ${CNI_ADD_PATH}` });
    readJson(req)
      .then((raw) => {
        const body = raw as CniAddRequest;
        if (
          typeof body?.pod?.namespace !== 'string' ||
          typeof body.pod.name !== 'string' ||
          typeof body.pod.uid !== 'string'
        ) {
          return reply(res, 400, { error: 'pod.uid, pod.namespace and pod.name are required' });
        }
        const pod: ClusterPod = {
          kind: 'Pod',
          uid: body.pod.uid,
          namespace: body.pod.namespace,
          name: body.pod.name,
          node: ctx.node,
          serviceAccount: 'default',
          labels: body.pod.labels ?? {},
          annotations: body.pod.annotations ?? {},
          ips: Array.isArray(body.pod.ips) ? body.pod.ips.filter((ip) => typeof ip === 'string') : [],
          phase: 'Running',
          ready: false,
          hostNetwork: false,
          terminating: false,
        };
        const [e] = desiredEnrollments([pod], () => body.namespaceLabels ?? {}, ctx, cgroups);
        if (e === undefined)
          return reply(res, 200, { enrolled: false, warnings: [] } satisfies CniAddResponse);
        const id = cgroupId(e.cgroup);
        target.enroll(id, e.config);
        for (const w of e.warnings) log.warn({ pod: e.pod }, w);
        return onEnrolled(id, e.pod, e.ips).then(() => {
          log.info({ pod: e.pod, cgroupId: id.toString(), excluded: e.config }, 'pod enrolled (CNI add)');
          reply(res, 200, {
            enrolled: true,
            cgroupId: id.toString(),
            warnings: e.warnings,
          } satisfies CniAddResponse);
        });
      })
      .catch((err: unknown) => {
        log.error({ err }, 'CNI add failed');
        reply(res, 500, { error: (err as Error).message });
      });
  });
  mkdirSync(dirname(socketPath), { recursive: true });
  if (existsSync(socketPath)) unlinkSync(socketPath);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve(server));
  });
}
