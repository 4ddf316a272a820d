import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { enrolledNamespacesFile, NAMESPACES_FILE_HEADER } from '../../api/cni.js';
import {
  AMBIT_CNI_TYPE,
  type AmbitPluginConfig,
  CNI_CONF_EXTENSIONS,
  type ConfEdit,
  confReader,
  insertAmbitPlugin,
  pickConfFile,
  removeAmbitPlugin,
} from '../../cni/conflist.js';
import type { Logger } from '../../telemetry/logger.js';
import { cniSandboxesFile } from '../redirection/cni-sandboxes.js';

/** Where the node's CNI lives and what the agent puts there. */
export interface CniPaths {
  /** The runtime's CNI bin dir (--cni-bin-dir). */
  readonly binDir: string;
  /** The runtime's CNI conf dir (--cni-conf-dir). */
  readonly confDir: string;
  /** The agent's CNI socket (--cni-socket); the enrolled-namespaces file is beside it. */
  readonly socket: string;
}

/**
 * Writes a file as a whole or not at all: a temporary file in the same folder, then rename. The
 * temporary name starts with a dot and ends in `.ambit-tmp`, so a runtime scanning the conf dir for
 * `.conf`/`.conflist`/`.json` never loads a half-written config. A file that exists keeps its mode and
 * owner (a byte-exact restore of the primary CNI's file includes them); a new one gets `mode`. `like`
 * names another file whose mode and owner to take instead (a .conf converted to a .conflist and back).
 */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644, like = path): void {
  const tmp = join(dirname(path), `.${basename(path)}.ambit-tmp`);
  const was = existsSync(like) ? statSync(like) : undefined;
  const want = was === undefined ? mode : was.mode & 0o7777;
  writeFileSync(tmp, data, { mode: want });
  chmodSync(tmp, want);
  if (was !== undefined && (was.uid !== process.getuid?.() || was.gid !== process.getgid?.()))
    chownSync(tmp, was.uid, was.gid);
  renameSync(tmp, path);
}

/** Copies the plugin binary into the bin dir, atomically (a runtime may exec it at any moment). */
export function installPluginBinary(plugin: string, binDir: string): string {
  mkdirSync(binDir, { recursive: true });
  const target = join(binDir, AMBIT_CNI_TYPE);
  const tmp = join(binDir, `.${AMBIT_CNI_TYPE}.ambit-tmp`);
  copyFileSync(plugin, tmp);
  chmodSync(tmp, 0o755);
  renameSync(tmp, target);
  return target;
}

function applyEdit(confDir: string, edit: ConfEdit): void {
  if (edit.write !== undefined) {
    const path = join(confDir, edit.write.file);
    // A conversion (.conf -> .conflist and back) writes a new name: it takes the mode of the file it replaces.
    const like = edit.remove !== undefined && !existsSync(path) ? join(confDir, edit.remove) : path;
    writeFileAtomic(path, edit.write.text, 0o644, like);
  }
  if (edit.remove !== undefined && edit.remove !== edit.write?.file)
    rmSync(join(confDir, edit.remove), { force: true });
}

/**
 * Inserts Ambit's entry into the config file the runtime loads (the first by name). Returns the file
 * edited, or undefined when there was nothing to do (already there, or no config yet: the primary CNI
 * has not written one). Throws AMBIT_ERR_CNI_CONFIG for a file it cannot use, which stays untouched.
 */
export function insertConfEntry(
  confDir: string,
  cfg: AmbitPluginConfig,
): { file?: string; changed: boolean } {
  const file = pickConfFile(
    existsSync(confDir) ? readdirSync(confDir) : [],
    confReader((n) => readFileSync(join(confDir, n), 'utf8')),
  );
  if (file === undefined) return { changed: false };
  const edit = insertAmbitPlugin(file, readFileSync(join(confDir, file), 'utf8'), cfg);
  applyEdit(confDir, edit);
  return { file: edit.write?.file ?? file, changed: edit.write !== undefined };
}

/** Removes Ambit's entry from every config file of the dir that has one; returns the files restored. */
export function removeConfEntries(confDir: string): string[] {
  if (!existsSync(confDir)) return [];
  const restored: string[] = [];
  for (const file of readdirSync(confDir).filter((n) => CNI_CONF_EXTENSIONS.some((e) => n.endsWith(e)))) {
    const path = join(confDir, file);
    if (!existsSync(path)) continue;
    const edit = removeAmbitPlugin(file, readFileSync(path, 'utf8'));
    if (edit.write === undefined) continue;
    applyEdit(confDir, edit);
    restored.push(edit.write.file);
  }
  return restored;
}

/** Rewrites the namespaces file when the set changed (the header, then one name per line, sorted). */
export function writeEnrolledNamespaces(
  socket: string,
  namespaces: readonly string[],
  last: string | undefined,
): string {
  const text = `${NAMESPACES_FILE_HEADER}\n${[...new Set(namespaces)]
    .sort()
    .map((n) => `${n}\n`)
    .join('')}`;
  if (text !== last) {
    mkdirSync(dirname(socket), { recursive: true });
    writeFileAtomic(enrolledNamespacesFile(socket), text);
  }
  return text;
}

/** The node-side part of uninstall for the CNI: the conflist entry, the binary, the socket, the file. */
export function uninstallCni(paths: CniPaths): { restored: string[]; removed: string[] } {
  const restored = removeConfEntries(paths.confDir);
  const removed: string[] = [];
  for (const f of [
    join(paths.binDir, AMBIT_CNI_TYPE),
    paths.socket,
    enrolledNamespacesFile(paths.socket),
    cniSandboxesFile(paths.socket),
  ]) {
    if (!existsSync(f)) continue;
    rmSync(f, { force: true });
    removed.push(f);
  }
  return { restored, removed };
}

/**
 * Keeps Ambit's entry in the conflist: inserts it now and again whenever the conf dir changes (a
 * primary CNI that rewrites its config on start or upgrade drops the entry). Our own write triggers
 * the watch too; the insert is idempotent, so that settles at once.
 */
export function keepConfEntry(
  confDir: string,
  cfg: AmbitPluginConfig,
  log: Logger,
  signal: AbortSignal,
): void {
  mkdirSync(confDir, { recursive: true });
  let reported = '';
  const ensure = (): void => {
    try {
      const r = insertConfEntry(confDir, cfg);
      if (r.file === undefined) {
        if (reported !== 'none')
          log.warn(
            { confDir },
            'no CNI network config yet; Ambit inserts itself once the primary CNI writes one',
          );
        reported = 'none';
      } else if (r.changed) {
        log.info({ confDir, file: r.file }, 'Ambit CNI plugin inserted into the network config');
        reported = '';
      }
    } catch (err) {
      const message = (err as Error).message;
      if (reported !== message)
        log.error({ err, confDir }, 'cannot insert the Ambit CNI plugin; retrying when the file changes');
      reported = message;
    }
  };
  ensure();
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(confDir, () => {
    clearTimeout(timer);
    timer = setTimeout(ensure, 100);
  });
  signal.addEventListener('abort', () => {
    clearTimeout(timer);
    watcher.close();
  });
}
