import {
  type CniCall,
  type CniCallResult,
  type CniErrorBody,
  CniErrorCode,
  podOfCall,
} from '../../api/cni.js';
import type { ClusterPod } from '../../cluster/resources.js';
import type { Labels } from '../../config/kube-types.js';
import { isAmbient } from '../../mesh/labels.js';
import { cgroupId } from '../../os/cgroup.js';
import type { Logger } from '../../telemetry/logger.js';
import type { PodCgroupResolver } from '../pod-cgroups.js';
import { delDecision, type SandboxRecord } from './cni-sandboxes.js';
import { desiredEnrollments, type Enrollment, type Excluded } from './enrollment.js';
import { EXCLUSION_REASONS, type ExclusionContext, enrollmentExclusion } from './enrollment-exclusion.js';
import type { EnrollmentTarget } from './enrollment-sync.js';

/** Where the agent finds a pod that a CNI call names: its API view first, else the Kubernetes API. */
export interface PodLookup {
  /** The pod (with this UID when one is given), waiting a bounded time for it to appear. */
  pod(namespace: string, name: string, uid: string | undefined): Promise<ClusterPod | undefined>;
  /** The namespace's labels, or undefined when it does not exist. */
  namespaceLabels(namespace: string): Promise<Labels | undefined>;
}

/**
 * Whether a pod that a runtime is starting on this node belongs in the mesh: the enrollment rules of
 * the API view, for a pod that the API does not yet show as Running (the CNI call comes before any
 * container starts) and whose addresses only the primary plugin's result knows.
 */
export function cniEnrollment(
  pod: ClusterPod,
  namespaceLabels: Labels | undefined,
  ctx: ExclusionContext,
  ips: readonly string[],
  cgroups: PodCgroupResolver,
): Enrollment | Excluded {
  const starting: ClusterPod = {
    ...pod,
    node: ctx.node,
    phase: 'Running',
    terminating: false,
    ips: ips.length > 0 ? ips : pod.ips,
  };
  const who = `${pod.namespace}/${pod.name}`;
  const reason = enrollmentExclusion(starting, namespaceLabels, cgroups.resolve(starting), ctx);
  if (reason !== undefined) return { pod: who, reason };
  return (
    desiredEnrollments([starting], () => namespaceLabels, ctx, cgroups)[0] ?? {
      pod: who,
      reason: 'no-cgroup',
    }
  );
}

export type CniReply =
  | { readonly status: 200; readonly body: CniCallResult }
  | { readonly status: 400 | 500 | 503; readonly body: CniErrorBody };

/**
 * Carries out the CNI calls the plugin forwards: ADD enrolls a meshed pod before its containers start
 * (the answer comes once the kernel map and the inbound capture hold it), DEL unenrolls it, CHECK
 * says whether a pod that belongs in the mesh is enrolled.
 */
export class CniCalls {
  constructor(
    private readonly o: {
      /** This node, its attach point and the agent's own cgroup (loop safety). */
      readonly exclusion: ExclusionContext;
      readonly cgroups: PodCgroupResolver;
      readonly target: EnrollmentTarget;
      readonly lookup: PodLookup;
      /** Which sandbox enrolled each cgroup: only its DEL unenrolls (see cni-sandboxes.ts). */
      readonly sandboxes: SandboxRecord;
      /** A pod was enrolled: inbound capture must cover it before the call returns. */
      readonly onEnrolled: (id: bigint, pod: string, ips: readonly string[]) => Promise<void>;
      readonly onUnenrolled: (id: bigint) => Promise<void>;
      readonly log: Logger;
    },
  ) {}

  async handle(call: CniCall): Promise<CniReply> {
    const ref = podOfCall(call);
    const log = this.o.log.child({
      cni: call.command,
      containerId: call.containerId.slice(0, 12),
      ...(ref === undefined ? {} : { pod: `${ref.namespace}/${ref.name}` }),
    });
    const error = (status: 500 | 503, code: number, msg: string, details = ''): CniReply => {
      log.warn({ code, details }, `CNI ${call.command} refused: ${msg}`);
      return { status, body: { cniVersion: call.cniVersion, code, msg, details } };
    };
    if (call.command === 'DEL') return this.del(call, ref, log);
    if (ref === undefined) {
      log.info('CNI call for something that is not a Kubernetes pod (no K8S_POD_NAMESPACE/NAME): passed');
      return { status: 200, body: { enrolled: false, notes: ['not a Kubernetes pod'] } };
    }
    const who = `${ref.namespace}/${ref.name}`;
    const [pod, nsLabels] = await Promise.all([
      this.o.lookup.pod(ref.namespace, ref.name, ref.uid),
      this.o.lookup.namespaceLabels(ref.namespace),
    ]);
    if (pod === undefined) {
      if (!isAmbient(nsLabels, {}))
        return this.ok(log, call, {
          enrolled: false,
          notes: [`pod ${who} is not in the API; its namespace is not enrolled`],
        });
      return error(
        503,
        CniErrorCode.TRY_AGAIN_LATER,
        `pod ${who}${ref.uid === undefined ? '' : ` (uid ${ref.uid})`} of enrolled namespace ${ref.namespace} is not in the Kubernetes API yet`,
      );
    }
    const e = cniEnrollment(pod, nsLabels, this.o.exclusion, call.ips, this.o.cgroups);
    if ('reason' in e)
      return this.ok(log, call, {
        enrolled: false,
        notes: [`pod ${who} is not enrolled: ${EXCLUSION_REASONS[e.reason]} (${e.reason})`],
      });
    let id: bigint;
    try {
      id = cgroupId(e.cgroup);
    } catch (err) {
      return error(
        503,
        CniErrorCode.TRY_AGAIN_LATER,
        `the cgroup of pod ${who} (${e.cgroup}) does not exist`,
        (err as Error).message,
      );
    }
    if (call.command === 'CHECK') {
      if (this.o.target.enrolled().has(id))
        return this.ok(log, call, { enrolled: true, cgroupId: id.toString(), notes: [] });
      return error(500, CniErrorCode.TRY_AGAIN_LATER, `pod ${who} belongs in the mesh but is not enrolled`);
    }
    this.o.target.enroll(id, e.config);
    try {
      this.o.sandboxes.set(id, call.containerId);
    } catch (err) {
      // Kept in memory still; only a restarted agent would not know this sandbox (its DEL then keeps the pod).
      log.warn({ err }, 'cannot persist which sandbox enrolled the pod');
    }
    for (const w of e.warnings) log.warn(w);
    await this.o.onEnrolled(id, e.pod, e.ips);
    return this.ok(log, call, { enrolled: true, cgroupId: id.toString(), notes: e.warnings });
  }

  private ok(log: Logger, call: CniCall, body: CniCallResult): CniReply {
    log.info(
      {
        enrolled: body.enrolled,
        ...(body.cgroupId === undefined ? {} : { cgroupId: body.cgroupId }),
        notes: body.notes,
      },
      `CNI ${call.command} done`,
    );
    return { status: 200, body };
  }

  private async del(call: CniCall, ref: ReturnType<typeof podOfCall>, log: Logger): Promise<CniReply> {
    let id = this.o.sandboxes.cgroupOf(call.containerId);
    if (id === undefined && ref !== undefined) {
      // Not a sandbox that enrolled anything: the pod's cgroup, only to say why it stays enrolled.
      const path = this.o.cgroups.resolve({ namespace: ref.namespace, name: ref.name, uid: ref.uid ?? '' });
      try {
        id = path === undefined ? undefined : cgroupId(path);
      } catch {
        id = undefined;
      }
    }
    if (id === undefined) return this.ok(log, call, { enrolled: false, notes: [] });
    const d = delDecision(call.containerId, this.o.sandboxes.sandboxOf(id), this.o.target.enrolled().has(id));
    if (!d.unenroll) {
      if (d.reason === 'not-enrolled') return this.ok(log, call, { enrolled: false, notes: [] });
      return this.ok(log, call, {
        enrolled: true,
        cgroupId: id.toString(),
        notes: [
          d.reason === 'other-sandbox'
            ? 'kept: another sandbox of the pod enrolled it (a stale DEL)'
            : 'kept: no sandbox of this agent enrolled it; the API reconcile decides',
        ],
      });
    }
    this.o.target.unenroll(id);
    try {
      this.o.sandboxes.delete(id);
    } catch (err) {
      log.warn({ err }, 'cannot persist the sandbox record');
    }
    await this.o.onUnenrolled(id);
    return this.ok(log, call, { enrolled: false, cgroupId: id.toString(), notes: ['unenrolled'] });
  }
}
