import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';

/*
 * A strict walk of a Kubernetes object against the types that kubernetes-models and
 * @kubernetes-models/gateway-api ship (generated from the official OpenAPI schemas): every field of
 * the object must be a property of its type there. The models' own validate() accepts unknown fields
 * (`imagePullPolcy`), as the API server's pruning would silently drop them; this walk does not.
 *
 * The compiled validators in `_schemas` carry no property lists, so the walk reads the models'
 * declaration files, where each schema is an interface: properties, `Array<T>`, `{[key: string]: T}`
 * maps, and imports of the other schemas it refers to (the schema's $ref), which it follows.
 */

const require = createRequire(import.meta.url);
const root = resolve(dirname(require.resolve('kubernetes-models/package.json')), '..');

/** A type as the walk needs it. */
type Shape =
  | { readonly t: 'leaf' }
  | { readonly t: 'object'; readonly props: ReadonlyMap<string, () => Shape> }
  | { readonly t: 'array'; readonly item: () => Shape }
  | { readonly t: 'map'; readonly value: () => Shape }
  | { readonly t: 'union'; readonly options: readonly (() => Shape)[] };

const LEAF: Shape = { t: 'leaf' };
const files = new Map<string, ts.SourceFile>();
const shapes = new Map<string, Shape>();

function source(file: string): ts.SourceFile {
  let sf = files.get(file);
  if (sf === undefined) {
    sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    files.set(file, sf);
  }
  return sf;
}

/** `./Container.js` or `@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta`, as a .d.ts path. */
function resolveImport(from: string, spec: string): string {
  if (spec.startsWith('.')) return join(dirname(from), spec.replace(/\.js$/, '.d.ts'));
  return join(root, `${spec.replace(/\.js$/, '')}.d.ts`);
}

/** Where a name used in `file` is declared: the file and the local name there. */
function declaration(file: string, name: string): { file: string; node: ts.Node } | undefined {
  const sf = source(file);
  for (const st of sf.statements) {
    if ((ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st)) && st.name.text === name)
      return { file, node: st };
    if (ts.isImportDeclaration(st) && st.importClause?.namedBindings !== undefined) {
      const nb = st.importClause.namedBindings;
      if (!ts.isNamedImports(nb)) continue;
      for (const el of nb.elements) {
        if (el.name.text !== name) continue;
        const target = resolveImport(file, (st.moduleSpecifier as ts.StringLiteral).text);
        return declaration(target, (el.propertyName ?? el.name).text);
      }
    }
    // `export type { IContainer as IIoK8sApiCoreV1Container }`
    if (ts.isExportDeclaration(st) && st.exportClause !== undefined && ts.isNamedExports(st.exportClause)) {
      for (const el of st.exportClause.elements)
        if (el.name.text === name && el.propertyName !== undefined)
          return declaration(file, el.propertyName.text);
    }
  }
  return undefined;
}

function shapeOfType(file: string, node: ts.TypeNode): Shape {
  if (ts.isArrayTypeNode(node)) return { t: 'array', item: () => shapeOfType(file, node.elementType) };
  if (ts.isParenthesizedTypeNode(node)) return shapeOfType(file, node.type);
  if (ts.isUnionTypeNode(node)) {
    const options = node.types.map((t) => () => shapeOfType(file, t));
    return { t: 'union', options };
  }
  if (ts.isTypeLiteralNode(node)) return shapeOfMembers(file, node.members);
  if (ts.isTypeReferenceNode(node)) {
    const name = node.typeName.getText();
    if (name === 'Array' && node.typeArguments?.[0] !== undefined) {
      const arg = node.typeArguments[0];
      return { t: 'array', item: () => shapeOfType(file, arg) };
    }
    const d = declaration(file, name);
    if (d === undefined) return LEAF;
    return shapeOfDeclaration(d.file, d.node);
  }
  // string, number, boolean, literal types, any, unknown
  return LEAF;
}

function shapeOfMembers(file: string, members: ts.NodeArray<ts.TypeElement>): Shape {
  const index = members.find(ts.isIndexSignatureDeclaration);
  if (index !== undefined) return { t: 'map', value: () => shapeOfType(file, index.type) };
  const props = new Map<string, () => Shape>();
  for (const m of members) {
    if (!ts.isPropertySignature(m) || m.type === undefined) continue;
    const key = ts.isStringLiteral(m.name) ? m.name.text : m.name.getText();
    const type = m.type;
    props.set(key, () => shapeOfType(file, type));
  }
  return { t: 'object', props };
}

function shapeOfDeclaration(file: string, node: ts.Node): Shape {
  const key = `${file}#${(node as ts.InterfaceDeclaration).name.text}`;
  const known = shapes.get(key);
  if (known !== undefined) return known;
  let shape: Shape;
  if (ts.isInterfaceDeclaration(node)) {
    // An interface without members is a free-form schema (JSON, JSONSchemaPropsOrArray): not walked.
    // TypeMeta (apiVersion, kind), the one base the models extend, is restated in every model.
    shape = node.members.length === 0 ? LEAF : shapeOfMembers(file, node.members);
  } else if (ts.isTypeAliasDeclaration(node)) shape = shapeOfType(file, node.type);
  else shape = LEAF;
  shapes.set(key, shape);
  return shape;
}

/** The model's declaration file of an apiVersion and kind. */
function modelFile(apiVersion: string, kind: string): string {
  const pkg = apiVersion.startsWith('gateway.networking.k8s.io/')
    ? '@kubernetes-models/gateway-api'
    : 'kubernetes-models';
  return join(root, pkg, apiVersion, `${kind}.d.ts`);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function fits(value: unknown, s: Shape): boolean {
  if (s.t === 'object' || s.t === 'map') return isObject(value);
  if (s.t === 'array') return Array.isArray(value);
  return true;
}

function walk(value: unknown, s: Shape, path: string, problems: string[]): void {
  switch (s.t) {
    case 'leaf':
      return;
    case 'union': {
      // The first option of the value's own JSON type (an object takes the option with properties).
      const options = s.options.map((o) => o());
      const pick = options.find((o) => o.t !== 'leaf' && fits(value, o));
      if (pick !== undefined) walk(value, pick, path, problems);
      return;
    }
    case 'array':
      if (Array.isArray(value))
        for (const [i, v] of value.entries()) walk(v, s.item(), `${path}[${i}]`, problems);
      return;
    case 'map':
      if (isObject(value))
        for (const [k, v] of Object.entries(value)) walk(v, s.value(), `${path}.${k}`, problems);
      return;
    case 'object':
      if (!isObject(value)) return;
      for (const [k, v] of Object.entries(value)) {
        const at = path === '' ? k : `${path}.${k}`;
        const p = s.props.get(k);
        if (p === undefined) problems.push(`${at}: unknown field`);
        else walk(v, p(), at, problems);
      }
  }
}

/** Every field of the object that its schema does not have: `kind/name: path: unknown field`. */
export function unknownFields(obj: {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string };
}): string[] {
  const file = modelFile(obj.apiVersion, obj.kind);
  const d = declaration(file, `I${obj.kind}`);
  if (d === undefined)
    return [`${obj.kind}/${obj.metadata?.name}: no schema for ${obj.apiVersion} ${obj.kind}`];
  const problems: string[] = [];
  walk(obj, shapeOfDeclaration(d.file, d.node), '', problems);
  return problems.map((p) => `${obj.kind}/${obj.metadata?.name ?? ''}: ${p}`);
}
