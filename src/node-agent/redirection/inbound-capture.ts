import { isIPv4 } from 'node:net';
import { run } from '../../os/run-command.js';

/**
 * Inbound capture: plaintext TCP to an enrolled pod, from anywhere but this node itself, is steered to
 * the node proxy's transparent listener (15006), where PeerAuthentication (STRICT refuses it) and
 * authorization apply before the proxy forwards it. HBONE (15008) is not captured, and neither is
 * traffic the node makes itself: the proxy's own connections to pods and kubelet health probes leave
 * through the output path, which these rules never see.
 *
 * The chain runs in prerouting after destination NAT, so a connection to a Service VIP is captured
 * once it has become a connection to the pod. A SYN to an enrolled pod is TPROXY'd with a mark that
 * policy routing turns into local delivery; the later packets of that flow find its transparent
 * socket. This needs pod traffic to be routed by the node (local mode gives pods host-length
 * addresses; routed CNIs do the same); a CNI that bridges pods port to port would bypass it.
 */

export const CAPTURE_MARK = 0x1a1;
export const CAPTURE_TABLE = 417;
export const INBOUND_TABLE = 'ambit_inbound';

export interface CaptureConfig {
  readonly port: number;
}

/** The nftables ruleset for the given enrolled pod addresses; replaces the tables atomically. */
export function inboundRules(cfg: CaptureConfig, podIps: readonly string[]): string {
  const v4 = podIps.filter((ip) => isIPv4(ip));
  const v6 = podIps.filter((ip) => !isIPv4(ip));
  const set = (name: string, type: string, elems: readonly string[]): string =>
    `  set ${name} { type ${type};${elems.length > 0 ? ` elements = { ${elems.join(', ')} }` : ''} }`;
  const mark = `0x${CAPTURE_MARK.toString(16)}`;
  const lines = [
    `table inet ${INBOUND_TABLE}`,
    `delete table inet ${INBOUND_TABLE}`,
    `table inet ${INBOUND_TABLE} {`,
    set('pods4', 'ipv4_addr', v4),
    set('pods6', 'ipv6_addr', v6),
    '  chain prerouting {',
    '    type filter hook prerouting priority dstnat + 10; policy accept;',
    `    meta l4proto tcp socket transparent 1 meta mark set ${mark} accept`,
    `    ip daddr @pods4 tcp dport != 15008 tcp flags & (syn | ack) == syn tproxy ip to :${cfg.port} meta mark set ${mark} accept`,
    `    ip6 daddr @pods6 tcp dport != 15008 tcp flags & (syn | ack) == syn tproxy ip6 to :${cfg.port} meta mark set ${mark} accept`,
    '  }',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

/** Policy routing that delivers marked (TPROXY'd) packets locally. Idempotent. */
export async function installCaptureRouting(): Promise<void> {
  for (const fam of ['-4', '-6'] as const) {
    const rules = await run('ip', [fam, 'rule', 'show']);
    if (!rules.includes(`lookup ${CAPTURE_TABLE}`)) {
      await run('ip', [
        fam,
        'rule',
        'add',
        'fwmark',
        `0x${CAPTURE_MARK.toString(16)}`,
        'lookup',
        String(CAPTURE_TABLE),
        'priority',
        '100',
      ]);
    }
    await run('ip', [
      fam,
      'route',
      'replace',
      'local',
      fam === '-4' ? '0.0.0.0/0' : '::/0',
      'dev',
      'lo',
      'table',
      String(CAPTURE_TABLE),
    ]);
  }
}

export async function applyInboundRules(rules: string): Promise<void> {
  await run('nft', ['-f', '-'], { input: rules });
}

/** Removes the capture rules and routing (uninstall). */
export async function removeInboundCapture(): Promise<void> {
  await run('nft', ['delete', 'table', 'inet', INBOUND_TABLE], {
    okStderr: /No such file|does not exist/,
  }).catch(() => undefined);
  for (const fam of ['-4', '-6']) {
    await run('ip', [fam, 'rule', 'del', 'lookup', String(CAPTURE_TABLE)], { okStderr: /./ }).catch(
      () => undefined,
    );
    await run('ip', [fam, 'route', 'flush', 'table', String(CAPTURE_TABLE)], { okStderr: /./ }).catch(
      () => undefined,
    );
  }
}
