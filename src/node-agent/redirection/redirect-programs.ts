import { existsSync, mkdirSync, openSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { AttachType, type Bpf } from '../../bpf/libbpf.js';
import {
  decodePodConfig,
  encodeCgroupId,
  encodePodConfig,
  encodeProxyConfig,
  MapName,
  POD_CONFIG_SIZE,
  type PodRedirectConfig,
  ProgramName,
} from '../../bpf/redirect-maps.js';
import { AmbitError, ErrorCode } from '../../errors.js';
import { cgroupId } from '../../os/cgroup.js';
import type { Logger } from '../../telemetry/logger.js';

export interface RedirectConfig {
  /** bpffs folder for this node's pins (`maps/`, `links/`). */
  readonly bpfDir: string;
  readonly objectPath: string;
  /** Absolute cgroup v2 directory under which the node's pods live: the attach point. */
  readonly podsCgroup: string;
  /** The cgroup v2 mount that `podsCgroup` is under (to compute its level). */
  readonly cgroupRoot: string;
  /** `ip6` undefined: the node has no IPv6 address, IPv6 connections are not redirected. */
  readonly proxy: { readonly ip4: string; readonly ip6: string | undefined; readonly port: number };
  /** The network namespace of the node proxy, where sk_lookup steers connections to its listener. */
  readonly netnsPath?: string;
}

export interface InstallReport {
  /** Links that were already pinned and kept as they were. */
  readonly kept: string[];
  /** Links whose program was replaced in place (an upgrade). */
  readonly upgraded: string[];
  readonly created: string[];
  readonly mapsReused: string[];
}

const LINKS: readonly {
  readonly prog: string;
  readonly type: AttachType;
  readonly target: 'cgroup' | 'netns';
}[] = [
  { prog: ProgramName.connect4, type: AttachType.CgroupInet4Connect, target: 'cgroup' },
  { prog: ProgramName.connect6, type: AttachType.CgroupInet6Connect, target: 'cgroup' },
  { prog: ProgramName.sockops, type: AttachType.CgroupSockOps, target: 'cgroup' },
  { prog: ProgramName.skLookup, type: AttachType.SkLookup, target: 'netns' },
];

const CGROUP_LINKS = LINKS.filter((l) => l.target === 'cgroup');

/**
 * The node's redirection programs and maps, pinned under `bpfDir` so that they outlive the agent:
 * a restart adopts what is pinned (no second attachment, no lost enrollment), an upgrade swaps the
 * program inside the existing link (atomic, no window without redirection), and uninstall removes
 * the pins, which detaches the links. Only links Ambit created are ever touched.
 */
export class RedirectPrograms {
  private podsFd: number | undefined;

  constructor(
    private readonly bpf: Bpf,
    private readonly cfg: RedirectConfig,
    private readonly log: Logger,
  ) {}

  private mapPin(name: string): string {
    return join(this.cfg.bpfDir, 'maps', name);
  }

  private linkPin(prog: string): string {
    return join(this.cfg.bpfDir, 'links', prog);
  }

  install(): InstallReport {
    mkdirSync(join(this.cfg.bpfDir, 'maps'), { recursive: true });
    mkdirSync(join(this.cfg.bpfDir, 'links'), { recursive: true });
    const report: InstallReport = { kept: [], upgraded: [], created: [], mapsReused: [] };
    const pinned: Record<string, number> = {};
    for (const name of Object.values(MapName)) {
      const fd = this.bpf.objGet(this.mapPin(name));
      if (fd !== undefined) pinned[name] = fd;
    }
    let obj: ReturnType<Bpf['loadObject']>;
    try {
      obj = this.bpf.loadObject(this.cfg.objectPath, pinned);
      report.mapsReused.push(...Object.keys(pinned));
    } catch (err) {
      if (Object.keys(pinned).length === 0) throw err;
      // The pinned maps no longer fit this object (a layout change): start over, losing enrollment
      // state for a moment; the sync that follows restores it.
      this.log.warn({ err }, 'pinned maps do not match the new programs; reinstalling');
      for (const fd of Object.values(pinned)) this.bpf.close(fd);
      rmSync(this.cfg.bpfDir, { recursive: true, force: true });
      return this.install();
    }
    for (const fd of Object.values(pinned)) this.bpf.close(fd);
    try {
      for (const [name, fd] of Object.entries(obj.maps)) {
        if (!existsSync(this.mapPin(name))) this.bpf.objPin(fd, this.mapPin(name));
      }
      const netnsPath = this.cfg.netnsPath ?? '/proc/self/ns/net';
      const targets = {
        cgroup: { fd: openSync(this.cfg.podsCgroup, 'r'), id: cgroupId(this.cfg.podsCgroup) },
        netns: { fd: openSync(netnsPath, 'r'), id: statSync(netnsPath, { bigint: true }).ino },
      };
      try {
        for (const { prog, type, target } of LINKS) {
          const progFd = obj.programs[prog];
          if (progFd === undefined)
            throw new AmbitError(ErrorCode.BPF, `${this.cfg.objectPath} has no program ${prog}`);
          const pin = this.linkPin(prog);
          const linkFd = this.bpf.objGet(pin);
          if (linkFd !== undefined) {
            const info = this.bpf.linkInfo(linkFd);
            if (info.targetId !== targets[target].id) {
              // The cgroup (or namespace) was recreated since: that link points at one that is gone.
              this.bpf.close(linkFd);
              unlinkSync(pin);
            } else {
              const oldTag = this.bpf.progIdTag(info.progId);
              if (oldTag === this.bpf.progTag(progFd)) {
                report.kept.push(prog);
              } else {
                this.bpf.linkUpdate(linkFd, progFd);
                report.upgraded.push(prog);
              }
              this.bpf.close(linkFd);
              continue;
            }
          }
          const created = this.bpf.linkCreate(progFd, targets[target].fd, type);
          this.bpf.objPin(created, pin);
          this.bpf.close(created);
          report.created.push(prog);
        }
      } finally {
        this.bpf.close(targets.cgroup.fd);
        this.bpf.close(targets.netns.fd);
      }
    } finally {
      obj.close();
    }
    this.podsFd = this.bpf.objGet(this.mapPin(MapName.pods));
    this.writeProxyConfig();
    return report;
  }

  private writeProxyConfig(): void {
    const fd = this.bpf.objGet(this.mapPin(MapName.proxy));
    if (fd === undefined) throw new AmbitError(ErrorCode.BPF, 'the proxy config map is not pinned');
    try {
      const level = relative(this.cfg.cgroupRoot, this.cfg.podsCgroup)
        .split('/')
        .filter((p) => p !== '').length;
      this.bpf.mapUpdate(fd, Buffer.alloc(4), encodeProxyConfig({ ...this.cfg.proxy, podsLevel: level }));
    } finally {
      this.bpf.close(fd);
    }
  }

  private pods(): number {
    if (this.podsFd === undefined) throw new AmbitError(ErrorCode.INTERNAL, 'redirection is not installed');
    return this.podsFd;
  }

  /** Enrolled cgroup ids and their configs, as the kernel has them. */
  enrolled(): Map<bigint, PodRedirectConfig> {
    const out = new Map<bigint, PodRedirectConfig>();
    const value = Buffer.alloc(POD_CONFIG_SIZE);
    for (const key of this.bpf.mapKeys(this.pods(), 8)) {
      if (this.bpf.mapLookup(this.pods(), key, value))
        out.set(key.readBigUInt64LE(0), decodePodConfig(value));
    }
    return out;
  }

  enroll(id: bigint, config: PodRedirectConfig): void {
    this.bpf.mapUpdate(this.pods(), encodeCgroupId(id), encodePodConfig(config));
  }

  unenroll(id: bigint): void {
    this.bpf.mapDelete(this.pods(), encodeCgroupId(id));
  }

  /** Program ids attached to the pods cgroup, per attach type (for checks: exactly one of ours each). */
  attached(): Record<string, number[]> {
    const cgFd = openSync(this.cfg.podsCgroup, 'r');
    try {
      return Object.fromEntries(CGROUP_LINKS.map(({ prog, type }) => [prog, this.bpf.progQuery(cgFd, type)]));
    } finally {
      this.bpf.close(cgFd);
    }
  }

  close(): void {
    if (this.podsFd !== undefined) this.bpf.close(this.podsFd);
    this.podsFd = undefined;
  }
}

/**
 * Removes every pin under `bpfDir`. Once no process holds their fds, the links detach from the cgroup
 * and the programs and maps are freed; links of other projects are never touched.
 */
export function uninstallRedirect(bpfDir: string): void {
  rmSync(bpfDir, { recursive: true, force: true });
}
