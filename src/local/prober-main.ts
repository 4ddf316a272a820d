import { type ProbeOutcome, type ProbeTarget, type ResolvedProbe, runProbe } from './probe.js';

/**
 * The node prober: a tiny process that the local daemon starts inside each node's network namespace
 * (where a kubelet would run), to run health probes from the node. It answers probe requests over the
 * IPC channel and exits when the daemon goes away.
 */

export interface ProbeRequest {
  readonly id: number;
  readonly probe: ResolvedProbe;
  readonly target: ProbeTarget;
  readonly timeoutMs: number;
}

export interface ProbeReply extends ProbeOutcome {
  readonly id: number;
}

if (process.send === undefined) {
  process.stderr.write('the node prober is started by the local daemon, not by hand\n');
  process.exit(2);
}
process.on('message', (msg: ProbeRequest) => {
  void runProbe(msg.probe, msg.target, msg.timeoutMs).then((outcome) => {
    const reply: ProbeReply = { id: msg.id, ...outcome };
    process.send?.(reply);
  });
});
process.on('disconnect', () => process.exit(0));
