import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { ProbeAction } from '../manifests/model.js';
import { podCommand } from './pod-runtime.js';

/** A probe with its port resolved to a number. */
export type ResolvedProbe =
  | { readonly type: 'exec'; readonly command: readonly string[] }
  | {
      readonly type: 'httpGet';
      readonly path: string;
      readonly port: number;
      readonly scheme: 'HTTP' | 'HTTPS';
    }
  | { readonly type: 'tcpSocket'; readonly port: number };

export interface ProbeTarget {
  readonly ip: string;
  readonly cgroupDir: string;
  readonly pausePid: number;
}

export interface ProbeOutcome {
  readonly ok: boolean;
  readonly message: string;
}

/** Resolves a named probe port against the container's ports; undefined when the name is unknown. */
export function resolveProbe(
  action: ProbeAction,
  ports: readonly { readonly name?: string; readonly containerPort: number }[],
): ResolvedProbe | undefined {
  if (action.type === 'exec') return action;
  const port =
    typeof action.port === 'number' ? action.port : ports.find((p) => p.name === action.port)?.containerPort;
  if (port === undefined) return undefined;
  return action.type === 'httpGet' ? { ...action, port } : { type: 'tcpSocket', port };
}

/**
 * Runs one probe the way the kubelet does: from the node (so it reaches the pod like a health check from
 * the node would), HTTP status 200-399 is success, exec exit status 0 is success.
 */
export function runProbe(
  probe: ResolvedProbe,
  target: ProbeTarget,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  switch (probe.type) {
    case 'tcpSocket':
      return new Promise((resolve) => {
        const sock = connect({ host: target.ip, port: probe.port, timeout: timeoutMs });
        sock.once('connect', () => {
          sock.destroy();
          resolve({ ok: true, message: 'connected' });
        });
        sock.once('timeout', () => {
          sock.destroy();
          resolve({ ok: false, message: `tcp ${target.ip}:${probe.port}: timeout after ${timeoutMs}ms` });
        });
        sock.once('error', (err) =>
          resolve({ ok: false, message: `tcp ${target.ip}:${probe.port}: ${err.message}` }),
        );
      });
    case 'httpGet':
      return new Promise((resolve) => {
        const req = (probe.scheme === 'HTTPS' ? httpsRequest : request)({
          host: target.ip,
          port: probe.port,
          path: probe.path,
          method: 'GET',
          timeout: timeoutMs,
          rejectUnauthorized: false,
          headers: { 'user-agent': 'kube-probe/ambit-local' },
        });
        req.once('response', (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          resolve({ ok: code >= 200 && code < 400, message: `HTTP ${code}` });
        });
        req.once('timeout', () => {
          req.destroy();
          resolve({ ok: false, message: `GET ${probe.path}: timeout after ${timeoutMs}ms` });
        });
        req.once('error', (err) => resolve({ ok: false, message: `GET ${probe.path}: ${err.message}` }));
        req.end();
      });
    case 'exec':
      return new Promise((resolve) => {
        const [cmd, ...args] = podCommand(target, target.pausePid, '/', probe.command);
        const child = spawn(cmd!, args, { stdio: 'ignore', timeout: timeoutMs });
        child.once('exit', (code, signal) =>
          resolve(
            code === 0 ? { ok: true, message: 'exit 0' } : { ok: false, message: `exit ${code ?? signal}` },
          ),
        );
        child.once('error', (err) => resolve({ ok: false, message: err.message }));
      });
  }
}
