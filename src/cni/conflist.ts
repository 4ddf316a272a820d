import { AmbitError, ErrorCode } from '../errors.js';
import { type JsonSpan, jsonSpans, member } from './json-spans.js';

/**
 * Ambit's entry in a node's CNI network config, as pure text edits: the node agent inserts it after
 * the primary plugin (and after whatever else the conflist chains, portmap or bandwidth) and removes it
 * again, restoring the file byte for byte. Every byte outside the entry stays as the primary CNI wrote
 * it (its indentation, key order, spacing), so that an installer that compares its own file sees no
 * difference once Ambit is gone.
 *
 * A single-plugin `.conf` (or `.json`) cannot chain, so it becomes a `.conflist` of the same name, as
 * Istio's installer does: the original object is kept verbatim as the first plugin, Ambit's entry
 * follows, and the entry remembers the original file name and the whitespace around the object
 * (`convertedFrom`), so removal writes back the original file under its own name and deletes the
 * conflist.
 */

/** The plugin type (the binary's name in the CNI bin dir). */
export const AMBIT_CNI_TYPE = 'ambit-cni';

/** The config files the runtime reads: these extensions, sorted by name. */
export const CNI_CONF_EXTENSIONS = ['.conf', '.conflist', '.json'] as const;

/** What the plugin reads from its entry. */
export interface AmbitPluginConfig {
  /** The node agent's CNI socket; the enrolled-namespaces file is beside it. */
  readonly socket: string;
  /**
   * Namespaces the plugin passes without asking the agent and never fails closed for (kube-system and
   * Ambit's own: a node whose agent is down must still start the pods that bring it back).
   */
  readonly excludeNamespaces?: readonly string[];
}

interface ConvertedFrom {
  readonly file: string;
  readonly leading: string;
  readonly trailing: string;
}

/** What to do to the conf dir: write `write` (atomically), then delete `remove`. Neither: nothing to do. */
export interface ConfEdit {
  readonly write?: { readonly file: string; readonly text: string };
  readonly remove?: string;
}

/**
 * Whether a config file's text is a network config the runtime can load: a JSON object that is a
 * conflist (a non-empty "plugins" array) or a single plugin's config (a string "type").
 */
export function isUsableConf(text: string): boolean {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return false;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return false;
  const r = o as Record<string, unknown>;
  if (r.plugins !== undefined) return Array.isArray(r.plugins) && r.plugins.length > 0;
  return typeof r.type === 'string' && r.type !== '';
}

/**
 * The config file a runtime loads from these directory entries, as libcni's users (containerd's
 * go-cni, CRI-O, the kubelet) pick it: files of CNI_CONF_EXTENSIONS sorted by name, the first whose
 * text is a usable config (`read` gives a file's text, undefined when it cannot be read). Undefined:
 * there is none. The one rule for the agent's insert, local mode's runtime and `ambit check --pre`.
 */
export function pickConfFile(
  names: readonly string[],
  read: (name: string) => string | undefined,
): string | undefined {
  const candidates = names
    .filter((n) => CNI_CONF_EXTENSIONS.some((ext) => n.endsWith(ext)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return candidates.find((n) => {
    const text = read(n);
    return text !== undefined && isUsableConf(text);
  });
}

/** Reads a file of a conf dir for pickConfFile: undefined when it cannot be read (a folder, gone). */
export function confReader(readText: (name: string) => string): (name: string) => string | undefined {
  return (name) => {
    try {
      return readText(name);
    } catch {
      return undefined;
    }
  };
}

function parse(file: string, text: string): { value: Record<string, unknown>; root: JsonSpan } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AmbitError(
      ErrorCode.CNI_CONFIG,
      `${file}: not valid JSON (${(err as Error).message}); left as it is`,
      {
        cause: err,
      },
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new AmbitError(
      ErrorCode.CNI_CONFIG,
      `${file}: the top-level JSON value is not an object; left as it is`,
    );
  return { value: value as Record<string, unknown>, root: jsonSpans(text) };
}

function isAmbit(plugin: unknown): plugin is Record<string, unknown> {
  return (
    typeof plugin === 'object' && plugin !== null && (plugin as { type?: unknown }).type === AMBIT_CNI_TYPE
  );
}

function pluginsOf(
  file: string,
  value: Record<string, unknown>,
  root: JsonSpan,
): { list: unknown[]; span: JsonSpan } {
  const list = value.plugins;
  const span = member(root, 'plugins');
  if (!Array.isArray(list) || span?.kind !== 'array')
    throw new AmbitError(ErrorCode.CNI_CONFIG, `${file}: "plugins" is not an array; left as it is`);
  if (list.length === 0)
    throw new AmbitError(
      ErrorCode.CNI_CONFIG,
      `${file}: "plugins" is empty: there is no primary network plugin to chain after; left as it is`,
    );
  return { list, span };
}

/** The indentation unit of a file: the leading whitespace of its first indented line (two spaces if none). */
function indentUnit(text: string): string {
  return /\n([ \t]+)\S/.exec(text)?.[1] ?? '  ';
}

/** The whitespace right before position `at`. */
function whitespaceBefore(text: string, at: number): string {
  let i = at;
  while (i > 0 && ' \t\n\r'.includes(text[i - 1]!)) i--;
  return text.slice(i, at);
}

/** The entry's text, laid out like its neighbours: one member per line when they are, else on one line. */
function render(entry: Record<string, unknown>, separator: string, unit: string): string {
  if (!separator.includes('\n')) return JSON.stringify(entry);
  const indent = separator.slice(separator.lastIndexOf('\n') + 1);
  return JSON.stringify(entry, null, unit).replaceAll('\n', `\n${indent}`);
}

function entryOf(cfg: AmbitPluginConfig, convertedFrom?: ConvertedFrom): Record<string, unknown> {
  return {
    type: AMBIT_CNI_TYPE,
    socket: cfg.socket,
    ...(cfg.excludeNamespaces === undefined ? {} : { excludeNamespaces: [...cfg.excludeNamespaces] }),
    ...(convertedFrom === undefined ? {} : { convertedFrom }),
  };
}

function convertedFromOf(entry: Record<string, unknown>): ConvertedFrom | undefined {
  const c = entry.convertedFrom as Partial<ConvertedFrom> | undefined;
  return typeof c?.file === 'string' && typeof c.leading === 'string' && typeof c.trailing === 'string'
    ? { file: c.file, leading: c.leading, trailing: c.trailing }
    : undefined;
}

/**
 * Inserts Ambit's entry into `file` (its name in the conf dir, its text). Idempotent: a file that has
 * the entry already is left alone (or only the entry is rewritten when its socket differs). Throws
 * AMBIT_ERR_CNI_CONFIG, naming the file and the problem, for a file that is not a usable config.
 */
export function insertAmbitPlugin(file: string, text: string, cfg: AmbitPluginConfig): ConfEdit {
  const { value, root } = parse(file, text);
  if (value.plugins === undefined) return convertConf(file, text, value, root, cfg);
  const { list, span } = pluginsOf(file, value, root);
  if (span.kind !== 'array') return {};
  const at = list.findIndex(isAmbit);
  if (at >= 0) {
    const have = list[at] as Record<string, unknown>;
    const want = entryOf(cfg, convertedFromOf(have));
    if (JSON.stringify(have) === JSON.stringify(want)) return {};
    const old = span.items[at]!;
    const replaced = render(want, whitespaceBefore(text, old.start), indentUnit(text));
    return { write: { file, text: text.slice(0, old.start) + replaced + text.slice(old.end) } };
  }
  const last = span.items[span.items.length - 1]!;
  const separator = whitespaceBefore(text, last.start);
  const added = `,${separator}${render(entryOf(cfg), separator, indentUnit(text))}`;
  return { write: { file, text: text.slice(0, last.end) + added + text.slice(last.end) } };
}

function convertConf(
  file: string,
  text: string,
  value: Record<string, unknown>,
  root: JsonSpan,
  cfg: AmbitPluginConfig,
): ConfEdit {
  if (typeof value.type !== 'string')
    throw new AmbitError(
      ErrorCode.CNI_CONFIG,
      `${file}: neither a conflist (no "plugins" array) nor a plugin config (no "type"); left as it is`,
    );
  const convertedFrom = { file, leading: text.slice(0, root.start), trailing: text.slice(root.end) };
  const unit = indentUnit(text);
  const header = [
    `${unit}"cniVersion": ${JSON.stringify(value.cniVersion ?? '0.3.1')}`,
    `${unit}"name": ${JSON.stringify(value.name ?? file.replace(/\.[a-z]+$/, ''))}`,
  ];
  const ambit = render(entryOf(cfg, convertedFrom), `\n${unit}${unit}`, unit);
  const out = `{\n${header.join(',\n')},\n${unit}"plugins": [\n${text.slice(root.start, root.end)},\n${unit}${unit}${ambit}\n${unit}]\n}\n`;
  return { write: { file: `${file.replace(/\.(conf|json)$/, '')}.conflist`, text: out }, remove: file };
}

/**
 * Removes Ambit's entry from `file`, byte for byte what insertAmbitPlugin added; a file converted from
 * a `.conf` goes back to that file. A file without the entry is left alone.
 */
export function removeAmbitPlugin(file: string, text: string): ConfEdit {
  const { value, root } = parse(file, text);
  if (!Array.isArray(value.plugins)) return {};
  const { list, span } = pluginsOf(file, value, root);
  if (span.kind !== 'array') return {};
  const ours = list.flatMap((p, i) => (isAmbit(p) ? [i] : []));
  if (ours.length === 0) return {};
  const converted = ours
    .map((i) => convertedFromOf(list[i] as Record<string, unknown>))
    .find((c) => c !== undefined);
  if (converted !== undefined && list.length - ours.length === 1) {
    const original = span.items[list.findIndex((p) => !isAmbit(p))]!;
    return {
      write: {
        file: converted.file,
        text: converted.leading + text.slice(original.start, original.end) + converted.trailing,
      },
      remove: file,
    };
  }
  let out = text;
  // From the last, so that earlier spans still point at the right bytes.
  for (const i of ours.reverse()) {
    const item = span.items[i]!;
    const prev = span.items[i - 1];
    const next = span.items[i + 1];
    const [from, to] =
      prev !== undefined
        ? [prev.end, item.end]
        : next !== undefined
          ? [item.start, next.start]
          : [item.start, item.end];
    out = out.slice(0, from) + out.slice(to);
  }
  return { write: { file, text: out } };
}
