import { describe, expect, test } from 'vitest';
import { Fields, type IssueSink } from '../../src/config/field-reader.js';
import { type ConfigIssue, type FieldPath, formatIssue, formatPath } from '../../src/config/issue.js';
import {
  absolutePath,
  cidr,
  dns1123Label,
  dns1123Subdomain,
  envVarName,
  ianaSvcName,
  ipAddress,
  labelValue,
  qualifiedName,
} from '../../src/config/validators.js';
import { parseManifestTexts } from '../../src/manifests/load-manifests.js';
import type { Manifests } from '../../src/manifests/model.js';

const OPTS = { requireCommand: true, nodeNames: ['node-1', 'node-2'] } as const;

/** Strips the indentation of a template literal that starts with a newline, so rows read like files. */
function yaml(text: string): string {
  if (!text.startsWith('\n')) return text;
  const lines = text.slice(1).split('\n');
  const indent = Math.min(
    ...lines.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length),
  );
  return lines
    .map((l) => l.slice(indent))
    .join('\n')
    .replace(/[ ]+$/, '');
}

function parse(files: Record<string, string>, opts: Parameters<typeof parseManifestTexts>[1] = OPTS) {
  return parseManifestTexts(
    Object.entries(files).map(([file, text]) => ({ file, text: yaml(text) })),
    opts,
  );
}

function lines(issues: readonly ConfigIssue[]): string[] {
  return issues.map(formatIssue);
}

function count(m: Manifests): number {
  return (
    m.namespaces.length +
    m.serviceAccounts.length +
    m.pods.length +
    m.deployments.length +
    m.services.length +
    m.kept.length
  );
}

interface Row {
  readonly rule: string;
  readonly yaml: string;
  /** The exact formatted issue (`file:line path: message`), or its beginning when the row sets `prefix`. */
  readonly issue: string;
  readonly prefix?: boolean;
}

function expectIssue(found: readonly string[], row: Row): void {
  if (row.prefix)
    expect(
      found.some((l) => l.startsWith(row.issue)),
      `${row.issue}\nnot in\n${found.join('\n')}`,
    ).toBe(true);
  else expect(found).toContain(row.issue);
}

// Each row is one object with one mistake; the object must be rejected and the mistake reported where it is.
const documentRows: Row[] = [
  {
    rule: 'unclosed flow mapping',
    yaml: `
      apiVersion: v1
      kind: Namespace
      metadata: {name: shop
      spec: {}
    `,
    issue:
      'm.yaml:4 invalid YAML: Flow map in block collection must be sufficiently indented and end with a }',
  },
  {
    rule: 'tab indentation',
    yaml: 'apiVersion: v1\nkind: Namespace\nmetadata:\n\tname: shop\n',
    issue: 'm.yaml:4 invalid YAML: Tabs are not allowed as indentation',
  },
  {
    rule: 'duplicate key (reported at the second one)',
    yaml: `
      apiVersion: v1
      kind: Namespace
      metadata:
        name: shop
        name: store
    `,
    issue: 'm.yaml:5 invalid YAML: Map keys must be unique',
  },
  {
    rule: 'a list document',
    yaml: `
      - apiVersion: v1
        kind: Namespace
    `,
    issue: 'm.yaml:1 expected a Kubernetes object (a mapping with apiVersion, kind and metadata), got a list',
  },
  {
    rule: 'a scalar document',
    yaml: 'hello\n',
    issue:
      'm.yaml:1 expected a Kubernetes object (a mapping with apiVersion, kind and metadata), got "hello"',
  },
  {
    rule: 'missing apiVersion',
    yaml: `
      kind: Namespace
      metadata:
        name: shop
    `,
    issue: 'm.yaml:1 apiVersion: is required',
  },
  {
    rule: 'missing kind',
    yaml: `
      apiVersion: v1
      metadata:
        name: shop
    `,
    issue: 'm.yaml:1 kind: is required',
  },
  {
    rule: 'apiVersion that YAML reads as a number',
    yaml: `
      apiVersion: 1
      kind: Namespace
      metadata:
        name: shop
    `,
    issue: 'm.yaml:1 apiVersion: 1 is not a string (quote it)',
  },
  {
    rule: 'empty kind',
    yaml: `
      apiVersion: v1
      kind: ""
      metadata:
        name: shop
    `,
    issue: 'm.yaml:2 kind: must not be empty',
  },
  {
    rule: 'unknown kind lists the known kinds',
    yaml: `
      apiVersion: networking.k8s.io/v1
      kind: Ingress
      metadata:
        name: web
    `,
    issue:
      'm.yaml:2 kind: "Ingress" (networking.k8s.io/v1) is not a kind Ambit knows; known kinds: Namespace, ServiceAccount, Pod, Deployment, Service,',
    prefix: true,
  },
  {
    rule: 'wrong apiVersion for a kind',
    yaml: `
      apiVersion: v1
      kind: Deployment
      metadata:
        name: web
    `,
    issue: 'm.yaml:1 apiVersion: "v1" is not a version of Deployment; use "apps/v1"',
  },
  {
    rule: 'wrong apiVersion lists every accepted version',
    yaml: `
      apiVersion: gateway.networking.k8s.io/v1alpha1
      kind: HTTPRoute
      metadata:
        name: web
    `,
    issue:
      'm.yaml:1 apiVersion: "gateway.networking.k8s.io/v1alpha1" is not a version of HTTPRoute; use "gateway.networking.k8s.io/v1" or "gateway.networking.k8s.io/v1beta1"',
  },
  {
    rule: "Istio's security.istio.io/v1 names Ambit's group",
    yaml: `
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: deny-all
    `,
    issue:
      'm.yaml:1 apiVersion: "security.istio.io/v1" is Istio\'s; Ambit reads the same fields under "security.ambit.dev/v1alpha1"',
  },
  {
    rule: "Istio's security.istio.io/v1beta1 names Ambit's group",
    yaml: `
      apiVersion: security.istio.io/v1beta1
      kind: PeerAuthentication
      metadata:
        name: strict
    `,
    issue:
      'm.yaml:1 apiVersion: "security.istio.io/v1beta1" is Istio\'s; Ambit reads the same fields under "security.ambit.dev/v1alpha1"',
  },
];

const metadataRows: Row[] = [
  {
    rule: 'missing metadata',
    yaml: `
      apiVersion: v1
      kind: Namespace
    `,
    issue: 'm.yaml:1 metadata: is required',
  },
  {
    rule: 'metadata that is not a mapping',
    yaml: `
      apiVersion: v1
      kind: Namespace
      metadata: [shop]
    `,
    issue: 'm.yaml:3 metadata: expected a mapping, got a list',
  },
  {
    rule: 'missing name',
    yaml: `
      apiVersion: v1
      kind: Namespace
      metadata:
        labels: {team: a}
    `,
    issue: 'm.yaml:3 metadata.name: is required',
  },
  {
    rule: 'empty name',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: ""
    `,
    issue: 'm.yaml:4 metadata.name: must not be empty',
  },
  {
    rule: 'name that is not a DNS subdomain',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: My_Account
    `,
    issue:
      'm.yaml:4 metadata.name: "My_Account" is not a valid name (lowercase letters, digits, "-" and ".")',
  },
  {
    rule: 'Service name with a dot (must be a DNS label)',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web.v2
      spec:
        ports: [{port: 80}]
    `,
    issue:
      'm.yaml:4 metadata.name: "web.v2" is not a valid name (lowercase letters, digits and "-", starting and ending with a letter or digit)',
  },
  {
    rule: 'Namespace name longer than 63 characters',
    yaml: `
      apiVersion: v1
      kind: Namespace
      metadata:
        name: ${'n'.repeat(64)}
    `,
    issue: 'm.yaml:4 metadata.name: "' + 'n'.repeat(64) + '" is 64 characters long; at most 63 are allowed',
  },
  {
    rule: 'name longer than 253 characters',
    yaml: `
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: ${'c'.repeat(254)}
    `,
    issue:
      'm.yaml:4 metadata.name: "' + 'c'.repeat(254) + '" is 254 characters long; at most 253 are allowed',
  },
  {
    rule: 'namespace that is not a DNS label',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: sa
        namespace: Team_A
    `,
    issue:
      'm.yaml:5 metadata.namespace: "Team_A" is not a valid name (lowercase letters, digits and "-", starting and ending with a letter or digit)',
  },
  {
    rule: 'label key with two slashes',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: sa
        labels:
          example.com/team/a: x
    `,
    issue: 'm.yaml:6 metadata.labels["example.com/team/a"]: key "example.com/team/a" has more than one "/"',
  },
  {
    rule: 'label key with an invalid prefix',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: sa
        labels:
          Example.COM/team: x
    `,
    issue:
      'm.yaml:6 metadata.labels["Example.COM/team"]: key "Example.COM/team" has an invalid prefix (it must be a DNS subdomain)',
  },
  {
    rule: 'label key with an empty prefix',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: sa
        labels:
          /team: x
    `,
    issue:
      'm.yaml:6 metadata.labels["/team"]: key "/team" has an invalid prefix (it must be a DNS subdomain)',
  },
  {
    rule: 'label key with an empty name part',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: sa
        labels:
          example.com/: x
    `,
    issue:
      'm.yaml:6 metadata.labels["example.com/"]: key "example.com/" must have a name part of 1 to 63 characters',
  },
  {
    rule: 'label key with invalid characters',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: sa
        labels:
          -team: x
    `,
    issue:
      'm.yaml:6 metadata.labels["-team"]: key "-team" is not a valid key (letters, digits, "-", "_" and ".")',
  },
  {
    rule: 'label value that YAML reads as a number',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: sa
        labels:
          version: 2
    `,
    issue: 'm.yaml:6 metadata.labels.version: 2 is not a string (quote it)',
  },
  {
    rule: 'label value that is a mapping',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: sa
        labels:
          team: {name: a}
    `,
    issue: 'm.yaml:6 metadata.labels.team: a mapping is not a string',
  },
  {
    rule: 'label value with invalid characters',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: sa
        labels:
          team: a b
    `,
    issue:
      'm.yaml:6 metadata.labels.team: "a b" is not a valid label value (letters, digits, "-", "_" and ".")',
  },
  {
    rule: 'label value longer than 63 characters',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: sa
        labels:
          team: ${'v'.repeat(64)}
    `,
    issue:
      'm.yaml:6 metadata.labels.team: "' +
      'v'.repeat(64) +
      '" is 64 characters long; label values allow at most 63',
  },
  {
    rule: 'labels that are a list',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: sa
        labels: [a, b]
    `,
    issue: 'm.yaml:5 metadata.labels: expected a mapping, got a list',
  },
  {
    rule: 'annotation key that is invalid',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: sa
        annotations:
          a/b/c: x
    `,
    issue: 'm.yaml:6 metadata.annotations["a/b/c"]: key "a/b/c" has more than one "/"',
  },
  {
    rule: 'annotation value that YAML reads as a boolean',
    yaml: `
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: sa
        annotations:
          ambit.dev/enabled: true
    `,
    issue: 'm.yaml:6 metadata.annotations["ambit.dev/enabled"]: true is not a string (quote it)',
  },
];

const podRows: Row[] = [
  {
    rule: 'Pod without spec',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
    `,
    issue: 'm.yaml:1 spec: is required',
  },
  {
    rule: 'hostNetwork that is not a boolean',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        hostNetwork: "yes"
        containers:
          - name: c
            command: [sleep, infinity]
    `,
    issue: 'm.yaml:6 spec.hostNetwork: ',
    prefix: true,
  },
  {
    rule: 'a resource quantity that is not one',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            resources:
              limits:
                memory: 1mi
    `,
    issue:
      'm.yaml:11 spec.containers[0].resources.limits.memory: "1mi" is not a quantity (such as 500m, 1, 128Mi)',
  },
  {
    rule: 'missing containers',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        restartPolicy: Never
    `,
    issue: 'm.yaml:5 spec.containers: is required',
  },
  {
    rule: 'empty containers',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers: []
    `,
    issue: 'm.yaml:6 spec.containers: must not be empty',
  },
  {
    rule: 'containers that are a mapping',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          name: c
    `,
    issue: 'm.yaml:6 spec.containers: expected a list, got a mapping',
  },
  {
    rule: 'container that is a string',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - nginx
    `,
    issue: 'm.yaml:7 spec.containers[0]: expected a mapping, got "nginx"',
  },
  {
    rule: 'two containers with the same name',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: app
            command: [sleep, infinity]
          - name: app
            command: [sleep, infinity]
    `,
    issue: 'm.yaml:9 spec.containers[1].name: "app" is used by another container',
  },
  {
    rule: 'serviceAccountName that is not a DNS subdomain',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        serviceAccountName: Web_SA
        containers:
          - name: c
            command: [sleep, infinity]
    `,
    issue:
      'm.yaml:6 spec.serviceAccountName: "Web_SA" is not a valid name (lowercase letters, digits, "-" and ".")',
  },
  {
    rule: 'nodeName that is not a node of the cluster',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        nodeName: node-9
        containers:
          - name: c
            command: [sleep, infinity]
    `,
    issue: 'm.yaml:6 spec.nodeName: "node-9" is not a node of this cluster (nodes: node-1, node-2)',
  },
  {
    rule: 'nodeName that is not a DNS subdomain',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        nodeName: Node_1
        containers:
          - name: c
            command: [sleep, infinity]
    `,
    issue: 'm.yaml:6 spec.nodeName: "Node_1" is not a valid name (lowercase letters, digits, "-" and ".")',
  },
  {
    rule: 'unknown restartPolicy',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        restartPolicy: Sometimes
        containers:
          - name: c
            command: [sleep, infinity]
    `,
    issue: 'm.yaml:6 spec.restartPolicy: "Sometimes" is not one of Always, OnFailure, Never',
  },
  {
    rule: 'negative terminationGracePeriodSeconds',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        terminationGracePeriodSeconds: -1
        containers:
          - name: c
            command: [sleep, infinity]
    `,
    issue: 'm.yaml:6 spec.terminationGracePeriodSeconds: -1 is negative',
  },
  {
    rule: 'fractional terminationGracePeriodSeconds',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        terminationGracePeriodSeconds: 1.5
        containers:
          - name: c
            command: [sleep, infinity]
    `,
    issue: 'm.yaml:6 spec.terminationGracePeriodSeconds: 1.5 is not an integer',
  },
  {
    rule: 'quoted terminationGracePeriodSeconds',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        terminationGracePeriodSeconds: "30"
        containers:
          - name: c
            command: [sleep, infinity]
    `,
    issue: 'm.yaml:6 spec.terminationGracePeriodSeconds: "30" is not a number',
  },
];

const containerRows: Row[] = [
  {
    rule: 'container without name',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - command: [sleep, infinity]
    `,
    issue: 'm.yaml:7 spec.containers[0].name: is required',
  },
  {
    rule: 'container name that is not a DNS label',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: App
            command: [sleep, infinity]
    `,
    issue:
      'm.yaml:7 spec.containers[0].name: "App" is not a valid name (lowercase letters, digits and "-", starting and ending with a letter or digit)',
  },
  {
    rule: 'container without command in local mode',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            image: nginx
    `,
    issue:
      'm.yaml:7 spec.containers[0].command: is required: local mode runs the command on this host, so there is no image entrypoint to use',
  },
  {
    rule: 'empty command',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: []
    `,
    issue: 'm.yaml:8 spec.containers[0].command: must not be empty',
  },
  {
    rule: 'command written as one string',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: sleep 1
    `,
    issue: 'm.yaml:8 spec.containers[0].command: expected a list, got "sleep 1"',
  },
  {
    rule: 'an argument that YAML reads as a number',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep]
            args:
              - --seconds
              - 5
    `,
    issue: 'm.yaml:11 spec.containers[0].args[1]: 5 is not a string (quote it)',
  },
  {
    rule: 'an argument that is a mapping',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep]
            args:
              - {seconds: 5}
    `,
    issue: 'm.yaml:10 spec.containers[0].args[0]: a mapping is not a string',
  },
  {
    rule: 'image that YAML reads as a number',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            image: 3
            command: [sleep, infinity]
    `,
    issue: 'm.yaml:8 spec.containers[0].image: 3 is not a string (quote it)',
  },
  {
    rule: 'relative workingDir',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            workingDir: srv/app
    `,
    issue: 'm.yaml:9 spec.containers[0].workingDir: "srv/app" is not an absolute path',
  },
  {
    rule: 'env that is a mapping',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            env:
              MODE: prod
    `,
    issue: 'm.yaml:9 spec.containers[0].env: expected a list, got a mapping',
  },
  {
    rule: 'env var without name',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            env:
              - value: prod
    `,
    issue: 'm.yaml:10 spec.containers[0].env[0].name: is required',
  },
  {
    rule: 'env var name starting with a digit',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            env:
              - name: 1MODE
                value: prod
    `,
    issue: 'm.yaml:10 spec.containers[0].env[0].name: "1MODE" is not a valid environment variable name',
  },
  {
    rule: 'env value that YAML reads as a number',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            env:
              - name: PORT
                value: 8080
    `,
    issue: 'm.yaml:11 spec.containers[0].env[0].value: 8080 is not a string (quote it)',
  },
  {
    rule: 'valueFrom other than fieldRef',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            env:
              - name: TOKEN
                valueFrom:
                  secretKeyRef: {name: s, key: token}
    `,
    issue:
      'm.yaml:11 spec.containers[0].env[0].valueFrom.fieldRef: is required (local mode supports valueFrom.fieldRef only)',
  },
  {
    rule: 'fieldRef without fieldPath',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            env:
              - name: POD
                valueFrom:
                  fieldRef: {apiVersion: v1}
    `,
    issue: 'm.yaml:12 spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: is required',
  },
  {
    rule: 'fieldRef to a field local mode cannot fill',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            env:
              - name: PHASE
                valueFrom:
                  fieldRef:
                    fieldPath: status.phase
    `,
    issue:
      'm.yaml:13 spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: "status.phase" is not one of metadata.name, metadata.namespace, metadata.uid, spec.nodeName, spec.serviceAccountName, status.podIP, status.hostIP',
  },
  {
    rule: 'value and valueFrom together',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            env:
              - name: POD
                value: x
                valueFrom:
                  fieldRef: {fieldPath: metadata.name}
    `,
    issue: 'm.yaml:12 spec.containers[0].env[0].valueFrom: cannot be set together with value',
  },
  {
    rule: 'container port without containerPort',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            ports:
              - name: http
    `,
    issue: 'm.yaml:10 spec.containers[0].ports[0].containerPort: is required',
  },
  {
    rule: 'containerPort 0',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            ports:
              - containerPort: 0
    `,
    issue: 'm.yaml:10 spec.containers[0].ports[0].containerPort: 0 is below the minimum 1',
  },
  {
    rule: 'containerPort above 65535',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            ports:
              - containerPort: 70000
    `,
    issue: 'm.yaml:10 spec.containers[0].ports[0].containerPort: 70000 is above the maximum 65535',
  },
  {
    rule: 'quoted containerPort',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            ports:
              - containerPort: "80"
    `,
    issue: 'm.yaml:10 spec.containers[0].ports[0].containerPort: "80" is not a number',
  },
  {
    rule: 'port name in upper case',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            ports:
              - name: HTTP
                containerPort: 80
    `,
    issue:
      'm.yaml:10 spec.containers[0].ports[0].name: "HTTP" is not a valid port name (lowercase letters, digits and "-")',
  },
  {
    rule: 'port name with a double dash',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            ports:
              - name: http--alt
                containerPort: 80
    `,
    issue:
      'm.yaml:10 spec.containers[0].ports[0].name: "http--alt" is not a valid port name (lowercase letters, digits and "-")',
  },
  {
    rule: 'port name longer than 15 characters',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            ports:
              - name: http-metrics-alt
                containerPort: 80
    `,
    issue:
      'm.yaml:10 spec.containers[0].ports[0].name: "http-metrics-alt" is 16 characters long; port names allow at most 15',
  },
  {
    rule: 'port name without a letter',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            ports:
              - name: "8080"
                containerPort: 8080
    `,
    issue: 'm.yaml:10 spec.containers[0].ports[0].name: "8080" must contain at least one letter',
  },
  {
    rule: 'unknown container port protocol',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            ports:
              - containerPort: 80
                protocol: HTTP
    `,
    issue: 'm.yaml:11 spec.containers[0].ports[0].protocol: "HTTP" is not one of TCP, UDP, SCTP',
  },
  {
    rule: 'two container ports with the same name',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            ports:
              - name: http
                containerPort: 80
              - name: http
                containerPort: 8080
    `,
    issue: 'm.yaml:12 spec.containers[0].ports[1].name: "http" is used by another port',
  },
];

const probeRows: Row[] = [
  {
    rule: 'probe that is not a mapping',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            readinessProbe: /healthz
    `,
    issue: 'm.yaml:9 spec.containers[0].readinessProbe: expected a mapping, got "/healthz"',
  },
  {
    rule: 'probe without a handler',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            readinessProbe:
              periodSeconds: 5
    `,
    issue: 'm.yaml:9 spec.containers[0].readinessProbe: needs exactly one of exec, httpGet or tcpSocket',
  },
  {
    rule: 'probe with two handlers',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            livenessProbe:
              exec: {command: ["true"]}
              tcpSocket: {port: 80}
    `,
    issue:
      'm.yaml:9 spec.containers[0].livenessProbe: sets exec and tcpSocket; exactly one of exec, httpGet or tcpSocket is allowed',
  },
  {
    rule: 'exec probe without command',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            readinessProbe:
              exec: {}
    `,
    issue: 'm.yaml:10 spec.containers[0].readinessProbe.exec.command: is required',
  },
  {
    rule: 'exec probe with an empty command',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            readinessProbe:
              exec:
                command: []
    `,
    issue: 'm.yaml:11 spec.containers[0].readinessProbe.exec.command: must not be empty',
  },
  {
    rule: 'httpGet probe without port',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            readinessProbe:
              httpGet:
                path: /healthz
    `,
    issue: 'm.yaml:10 spec.containers[0].readinessProbe.httpGet.port: is required',
  },
  {
    rule: 'httpGet probe port 0 written as a string',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            readinessProbe:
              httpGet:
                port: "0"
    `,
    issue: 'm.yaml:11 spec.containers[0].readinessProbe.httpGet.port: 0 is below the minimum 1',
  },
  {
    rule: 'httpGet probe with an invalid port name',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            readinessProbe:
              httpGet:
                port: Http
    `,
    issue:
      'm.yaml:11 spec.containers[0].readinessProbe.httpGet.port: "Http" is not a valid port name (lowercase letters, digits and "-")',
  },
  {
    rule: 'httpGet probe with a relative path',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            readinessProbe:
              httpGet:
                port: 80
                path: healthz
    `,
    issue: 'm.yaml:12 spec.containers[0].readinessProbe.httpGet.path: "healthz" is not an absolute path',
  },
  {
    rule: 'httpGet probe with an unknown scheme',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            readinessProbe:
              httpGet:
                port: 80
                scheme: TCP
    `,
    issue: 'm.yaml:12 spec.containers[0].readinessProbe.httpGet.scheme: "TCP" is not one of HTTP, HTTPS',
  },
  {
    rule: 'tcpSocket probe without port',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            livenessProbe:
              tcpSocket: {host: localhost}
    `,
    issue: 'm.yaml:10 spec.containers[0].livenessProbe.tcpSocket.port: is required',
  },
  {
    rule: 'tcpSocket probe port above 65535',
    yaml: `
      apiVersion: v1
      kind: Pod
      metadata:
        name: p
      spec:
        containers:
          - name: c
            command: [sleep, infinity]
            livenessProbe:
              tcpSocket:
                port: 65536
    `,
    issue: 'm.yaml:11 spec.containers[0].livenessProbe.tcpSocket.port: 65536 is above the maximum 65535',
  },
  ...(
    [
      ['initialDelaySeconds', -5, '-5 is negative'],
      ['periodSeconds', 0, '0 is below the minimum 1'],
      ['timeoutSeconds', 0, '0 is below the minimum 1'],
      ['successThreshold', 0, '0 is below the minimum 1'],
      ['failureThreshold', 0, '0 is below the minimum 1'],
    ] as const
  ).map(
    ([field, value, message]): Row => ({
      rule: `probe ${field} ${value}`,
      yaml: `
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          containers:
            - name: c
              command: [sleep, infinity]
              readinessProbe:
                tcpSocket: {port: 80}
                ${field}: ${value}
      `,
      issue: `m.yaml:11 spec.containers[0].readinessProbe.${field}: ${message}`,
    }),
  ),
];

const deploymentRows: Row[] = [
  {
    rule: 'Deployment without spec',
    yaml: `
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
    `,
    issue: 'm.yaml:1 spec: is required',
  },
  ...(
    [
      [-1, '-1 is negative'],
      [101, '101 is above the maximum 100'],
      ['"3"', '"3" is not a number'],
    ] as const
  ).map(
    ([value, message]): Row => ({
      rule: `replicas ${value}`,
      yaml: `
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replicas: ${value}
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              containers:
                - name: c
                  command: [sleep, infinity]
      `,
      issue: `m.yaml:6 spec.replicas: ${message}`,
    }),
  ),
  {
    rule: 'Deployment without selector',
    yaml: `
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        template:
          metadata:
            labels: {app: web}
          spec:
            containers:
              - name: c
                command: [sleep, infinity]
    `,
    issue: 'm.yaml:5 spec.selector: is required',
  },
  {
    rule: 'selector without matchLabels',
    yaml: `
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector: {}
        template:
          metadata:
            labels: {app: web}
          spec:
            containers:
              - name: c
                command: [sleep, infinity]
    `,
    issue: 'm.yaml:6 spec.selector.matchLabels: is required',
  },
  {
    rule: 'empty matchLabels',
    yaml: `
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector:
          matchLabels: {}
        template:
          metadata:
            labels: {app: web}
          spec:
            containers:
              - name: c
                command: [sleep, infinity]
    `,
    issue: 'm.yaml:7 spec.selector.matchLabels: must not be empty',
  },
  {
    rule: 'matchExpressions',
    yaml: `
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector:
          matchLabels: {app: web}
          matchExpressions:
            - {key: app, operator: In, values: [web]}
        template:
          metadata:
            labels: {app: web}
          spec:
            containers:
              - name: c
                command: [sleep, infinity]
    `,
    issue: 'm.yaml:8 spec.selector.matchExpressions: is not supported; use matchLabels',
  },
  {
    rule: 'matchLabels with an invalid value',
    yaml: `
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector:
          matchLabels: {app: "web app"}
        template:
          metadata:
            labels: {app: "web app"}
          spec:
            containers:
              - name: c
                command: [sleep, infinity]
    `,
    issue:
      'm.yaml:7 spec.selector.matchLabels.app: "web app" is not a valid label value (letters, digits, "-", "_" and ".")',
  },
  {
    rule: 'Deployment without template',
    yaml: `
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector:
          matchLabels: {app: web}
    `,
    issue: 'm.yaml:5 spec.template: is required',
  },
  {
    rule: 'template without spec',
    yaml: `
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels: {app: web}
    `,
    issue: 'm.yaml:8 spec.template.spec: is required',
  },
  {
    rule: 'template labels that the selector does not match',
    yaml: `
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels: {app: frontend}
          spec:
            containers:
              - name: c
                command: [sleep, infinity]
    `,
    issue:
      'm.yaml:10 spec.template.metadata.labels: do not match spec.selector.matchLabels (app=web is missing); the Deployment would select none of its pods',
  },
  {
    rule: 'template without labels',
    yaml: `
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector:
          matchLabels: {app: web}
        template:
          spec:
            containers:
              - name: c
                command: [sleep, infinity]
    `,
    issue:
      'm.yaml:8 spec.template.metadata.labels: do not match spec.selector.matchLabels (app=web is missing); the Deployment would select none of its pods',
  },
  {
    rule: 'template label key that is invalid',
    yaml: `
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels:
              app: web
              _tier: x
          spec:
            containers:
              - name: c
                command: [sleep, infinity]
    `,
    issue:
      'm.yaml:12 spec.template.metadata.labels._tier: key "_tier" is not a valid key (letters, digits, "-", "_" and ".")',
  },
  {
    rule: 'restartPolicy other than Always in a Deployment',
    yaml: `
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels: {app: web}
          spec:
            restartPolicy: Never
            containers:
              - name: c
                command: [sleep, infinity]
    `,
    issue:
      'm.yaml:12 spec.template.spec.restartPolicy: "Never" is not allowed in a Deployment; only "Always" is',
  },
  {
    rule: 'container mistake inside a Deployment template',
    yaml: `
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels: {app: web}
          spec:
            containers:
              - name: c
                command: [sleep, infinity]
                ports:
                  - containerPort: 0
    `,
    issue: 'm.yaml:16 spec.template.spec.containers[0].ports[0].containerPort: 0 is below the minimum 1',
  },
];

const serviceRows: Row[] = [
  {
    rule: 'Service without spec',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
    `,
    issue: 'm.yaml:1 spec: is required',
  },
  {
    rule: 'ExternalName Service',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        type: ExternalName
    `,
    issue: 'm.yaml:6 spec.type: "ExternalName" Services are not supported by Ambit',
  },
  {
    rule: 'unknown Service type',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        type: Internal
        ports: [{port: 80}]
    `,
    issue: 'm.yaml:6 spec.type: "Internal" is not one of ClusterIP, NodePort, LoadBalancer',
  },
  {
    rule: 'clusterIP that is not an IP address',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        clusterIP: 10.96.0.300
        ports: [{port: 80}]
    `,
    issue: 'm.yaml:6 spec.clusterIP: "10.96.0.300" is not an IP address',
  },
  {
    rule: 'Service without ports',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        selector: {app: web}
    `,
    issue: 'm.yaml:5 spec.ports: is required',
  },
  {
    rule: 'Service with an empty port list',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports: []
    `,
    issue: 'm.yaml:6 spec.ports: must not be empty',
  },
  {
    rule: 'service port without port',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports:
          - targetPort: 8080
    `,
    issue: 'm.yaml:7 spec.ports[0].port: is required',
  },
  {
    rule: 'service port 0',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports:
          - port: 0
    `,
    issue: 'm.yaml:7 spec.ports[0].port: 0 is below the minimum 1',
  },
  {
    rule: 'service port above 65535',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports:
          - port: 65536
    `,
    issue: 'm.yaml:7 spec.ports[0].port: 65536 is above the maximum 65535',
  },
  {
    rule: 'service port written as a name',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports:
          - port: http
    `,
    issue: 'm.yaml:7 spec.ports[0].port: "http" is not a number',
  },
  {
    rule: 'targetPort 0',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports:
          - port: 80
            targetPort: 0
    `,
    issue: 'm.yaml:8 spec.ports[0].targetPort: 0 is below the minimum 1',
  },
  {
    rule: 'quoted targetPort above 65535',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports:
          - port: 80
            targetPort: "70000"
    `,
    issue: 'm.yaml:8 spec.ports[0].targetPort: 70000 is above the maximum 65535',
  },
  {
    rule: 'fractional targetPort',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports:
          - port: 80
            targetPort: 80.5
    `,
    issue: 'm.yaml:8 spec.ports[0].targetPort: 80.5 is not an integer',
  },
  {
    rule: 'targetPort name that is not a port name',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports:
          - port: 80
            targetPort: Http
    `,
    issue:
      'm.yaml:8 spec.ports[0].targetPort: "Http" is not a valid port name (lowercase letters, digits and "-")',
  },
  {
    rule: 'unknown service port protocol',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports:
          - port: 80
            protocol: tcp
    `,
    issue: 'm.yaml:8 spec.ports[0].protocol: "tcp" is not one of TCP, UDP, SCTP',
  },
  {
    rule: 'service port name that is not a DNS label',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports:
          - name: Web_1
            port: 80
    `,
    issue:
      'm.yaml:7 spec.ports[0].name: "Web_1" is not a valid name (lowercase letters, digits and "-", starting and ending with a letter or digit)',
  },
  {
    rule: 'appProtocol that YAML reads as a number',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports:
          - port: 80
            appProtocol: 2
    `,
    issue: 'm.yaml:8 spec.ports[0].appProtocol: 2 is not a string (quote it)',
  },
  {
    rule: 'unnamed port among several',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports:
          - name: http
            port: 80
          - port: 443
    `,
    issue: 'm.yaml:9 spec.ports[1].name: is required when a Service has more than one port',
  },
  {
    rule: 'two service ports with the same name',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports:
          - name: http
            port: 80
          - name: http
            port: 8080
    `,
    issue: 'm.yaml:9 spec.ports[1].name: "http" is used by another port',
  },
  {
    rule: 'the same port and protocol twice',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports:
          - name: a
            port: 80
          - name: b
            port: 80
    `,
    issue: 'm.yaml:10 spec.ports[1].port: 80/TCP is declared twice',
  },
  {
    rule: 'selector key that is invalid',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports: [{port: 80}]
        selector:
          app name: web
    `,
    issue:
      'm.yaml:8 spec.selector["app name"]: key "app name" is not a valid key (letters, digits, "-", "_" and ".")',
  },
  {
    rule: 'selector value that YAML reads as a boolean',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports: [{port: 80}]
        selector:
          canary: true
    `,
    issue: 'm.yaml:8 spec.selector.canary: true is not a string (quote it)',
  },
  {
    rule: 'unknown ipFamilyPolicy',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports: [{port: 80}]
        ipFamilyPolicy: DualStack
    `,
    issue:
      'm.yaml:7 spec.ipFamilyPolicy: "DualStack" is not one of SingleStack, PreferDualStack, RequireDualStack',
  },
  {
    rule: 'ipFamilies that is not a list',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports: [{port: 80}]
        ipFamilies: IPv4
    `,
    issue: 'm.yaml:7 spec.ipFamilies: expected a list, got "IPv4"',
  },
  {
    rule: 'unknown IP family',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports: [{port: 80}]
        ipFamilies:
          - IPv5
    `,
    issue: 'm.yaml:8 spec.ipFamilies[0]: "IPv5" is not one of IPv4, IPv6',
  },
  {
    rule: 'more than two IP families',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports: [{port: 80}]
        ipFamilyPolicy: RequireDualStack
        ipFamilies: [IPv4, IPv6, IPv4]
    `,
    issue: 'm.yaml:8 spec.ipFamilies: lists more than two families',
  },
  {
    rule: 'an IP family twice',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports: [{port: 80}]
        ipFamilyPolicy: PreferDualStack
        ipFamilies: [IPv6, IPv6]
    `,
    issue: 'm.yaml:8 spec.ipFamilies: lists a family twice',
  },
  {
    rule: 'two IP families with SingleStack',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        ports: [{port: 80}]
        ipFamilies: [IPv4, IPv6]
    `,
    issue: 'm.yaml:7 spec.ipFamilies: lists two families but ipFamilyPolicy is SingleStack',
  },
  {
    rule: 'clusterIP of the wrong family',
    yaml: `
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        clusterIP: fd00:10:96::a
        ports: [{port: 80}]
    `,
    issue: 'm.yaml:6 spec.clusterIP: "fd00:10:96::a" is IPv6 but the primary family is IPv4',
  },
];

const keptRows: Row[] = [
  {
    rule: 'kept kinds still have their metadata checked',
    yaml: `
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata:
        name: Web
    `,
    issue: 'm.yaml:4 metadata.name: "Web" is not a valid name (lowercase letters, digits, "-" and ".")',
  },
];

describe.each([
  ['documents and kinds', documentRows],
  ['metadata', metadataRows],
  ['Pod spec', podRows],
  ['containers', containerRows],
  ['probes', probeRows],
  ['Deployments', deploymentRows],
  ['Services', serviceRows],
  ['kept kinds', keptRows],
])('rejects %s', (_group, rows) => {
  test.each(rows)('$rule', (row) => {
    const { manifests, issues } = parse({ 'm.yaml': row.yaml });
    expectIssue(lines(issues), row);
    expect(issues.some((i) => i.severity === 'error')).toBe(true);
    expect(count(manifests)).toBe(0);
  });
});

describe('unknown fields', () => {
  test.each([
    {
      where: 'top level of a Namespace',
      yaml: `
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
        spex: {}
      `,
      issue: 'm.yaml:5 warning: spex: unknown field (known fields: apiVersion, kind, metadata)',
    },
    {
      where: 'a ServiceAccount',
      yaml: `
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: sa
        secret: []
      `,
      issue: 'm.yaml:5 warning: secret: unknown field (known fields: apiVersion, kind, metadata)',
    },
    {
      where: 'metadata',
      yaml: `
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: sa
          lables: {app: web}
      `,
      issue:
        'm.yaml:5 warning: metadata.lables: unknown field (known fields: name, namespace, labels, annotations)',
    },
    {
      where: 'a Pod',
      yaml: `
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          containers:
            - name: c
              command: [sleep, infinity]
        statu: {}
      `,
      issue: 'm.yaml:9 warning: statu: unknown field (known fields: apiVersion, kind, metadata, spec)',
    },
    {
      where: 'a pod spec',
      yaml: `
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          nodeSelecter: {disk: ssd}
          containers:
            - name: c
              command: [sleep, infinity]
      `,
      issue:
        'm.yaml:6 warning: spec.nodeSelecter: unknown field (known fields: containers, serviceAccountName, nodeName, restartPolicy, terminationGracePeriodSeconds, hostNetwork)',
    },
    {
      where: 'a container',
      yaml: `
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          containers:
            - name: c
              comand: [sleep]
              command: [sleep, infinity]
      `,
      issue:
        'm.yaml:8 warning: spec.containers[0].comand: unknown field (known fields: name, image, command, args, env, workingDir, ports, readinessProbe, livenessProbe, resources)',
    },
    {
      where: 'an env var',
      yaml: `
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          containers:
            - name: c
              command: [sleep, infinity]
              env:
                - name: A
                  valu: x
      `,
      issue:
        'm.yaml:11 warning: spec.containers[0].env[0].valu: unknown field (known fields: name, value, valueFrom)',
    },
    {
      where: 'a container port',
      yaml: `
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          containers:
            - name: c
              command: [sleep, infinity]
              ports:
                - containerPort: 80
                  protocl: UDP
      `,
      issue:
        'm.yaml:11 warning: spec.containers[0].ports[0].protocl: unknown field (known fields: name, containerPort, protocol)',
    },
    {
      where: 'a probe',
      yaml: `
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          containers:
            - name: c
              command: [sleep, infinity]
              readinessProbe:
                tcpSocket: {port: 80}
                period: 5
      `,
      issue: 'm.yaml:11 warning: spec.containers[0].readinessProbe.period: unknown field',
    },
    {
      where: 'an httpGet probe',
      yaml: `
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          containers:
            - name: c
              command: [sleep, infinity]
              readinessProbe:
                httpGet:
                  port: 80
                  paht: /healthz
      `,
      issue:
        'm.yaml:12 warning: spec.containers[0].readinessProbe.httpGet.paht: unknown field (known fields: path, port, scheme)',
    },
    {
      where: 'a tcpSocket probe',
      yaml: `
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          containers:
            - name: c
              command: [sleep, infinity]
              readinessProbe:
                tcpSocket:
                  port: 80
                  prot: 81
      `,
      issue:
        'm.yaml:12 warning: spec.containers[0].readinessProbe.tcpSocket.prot: unknown field (known fields: port)',
    },
    {
      where: 'a Deployment spec',
      yaml: `
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replica: 3
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              containers:
                - name: c
                  command: [sleep, infinity]
      `,
      issue: 'm.yaml:6 warning: spec.replica: unknown field (known fields: replicas, selector, template)',
    },
    {
      where: 'a Deployment template',
      yaml: `
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
              labelz: {}
            spec:
              containers:
                - name: c
                  command: [sleep, infinity]
      `,
      issue:
        'm.yaml:11 warning: spec.template.metadata.labelz: unknown field (known fields: labels, annotations)',
    },
    {
      where: 'a Deployment pod template',
      yaml: `
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            sepc: {}
            spec:
              containers:
                - name: c
                  command: [sleep, infinity]
      `,
      issue: 'm.yaml:11 warning: spec.template.sepc: unknown field (known fields: metadata, spec)',
    },
    {
      where: 'a Deployment selector',
      yaml: `
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          selector:
            matchLabels: {app: web}
            matchLabel: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              containers:
                - name: c
                  command: [sleep, infinity]
      `,
      issue: 'm.yaml:8 warning: spec.selector.matchLabel: unknown field (known fields: matchLabels)',
    },
    {
      where: 'a Service spec',
      yaml: `
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          ports: [{port: 80}]
          selektor: {app: web}
      `,
      issue: 'm.yaml:7 warning: spec.selektor: unknown field (known fields:',
    },
    {
      where: 'a Service port',
      yaml: `
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          ports:
            - port: 80
              target: 8080
      `,
      issue:
        'm.yaml:8 warning: spec.ports[0].target: unknown field (known fields: name, port, targetPort, protocol, appProtocol)',
    },
  ])('in $where are warnings; the object is kept', ({ yaml: text, issue }) => {
    const { manifests, issues } = parse({ 'm.yaml': text });
    expect(
      lines(issues).some((l) => l.startsWith(issue)),
      lines(issues).join('\n'),
    ).toBe(true);
    expect(issues.every((i) => i.severity === 'warning')).toBe(true);
    expect(count(manifests)).toBe(1);
  });

  test('fields Kubernetes has but local mode ignores are accepted silently', () => {
    const { manifests, issues } = parse({
      'm.yaml': `
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          uid: 0b5c7e1e
          resourceVersion: "42"
          creationTimestamp: null
        spec:
          strategy: {type: RollingUpdate}
          revisionHistoryLimit: 3
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              volumes: []
              tolerations: []
              containers:
                - name: c
                  imagePullPolicy: Always
                  resources: {limits: {cpu: 100m}}
                  command: [sleep, infinity]
                  ports:
                    - containerPort: 80
                      hostPort: 8080
                  readinessProbe:
                    httpGet: {port: 80, httpHeaders: []}
        status: {replicas: 1}
      `,
    });
    expect(lines(issues)).toEqual([]);
    expect(manifests.deployments).toHaveLength(1);
  });
});

describe('cross-object checks', () => {
  const ns = (name: string) => `
    apiVersion: v1
    kind: Namespace
    metadata:
      name: ${name}
  `;

  test('an object defined twice in two files is reported at the second, naming the first', () => {
    const { issues } = parse({ 'a.yaml': ns('shop'), 'b.yaml': `\n# again\n${yaml(ns('shop'))}` });
    expect(lines(issues)).toEqual([
      'b.yaml:5 metadata.name: Namespace/shop is already defined at a.yaml:1; this copy is ignored',
    ]);
  });

  test('an object defined twice in one file', () => {
    const { issues } = parse({
      'm.yaml': `
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: sa
        ---
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: sa
      `,
    });
    expect(lines(issues)).toEqual([
      'm.yaml:9 metadata.name: ServiceAccount/default/sa is already defined at m.yaml:1; this copy is ignored',
    ]);
  });

  test('the same name in two namespaces, or of two kinds, is not a duplicate', () => {
    const { manifests, issues } = parse({
      'm.yaml': `
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: web
        ---
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: web
          namespace: kube-system
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          ports: [{port: 80}]
      `,
    });
    expect(lines(issues)).toEqual([]);
    expect(manifests.serviceAccounts).toHaveLength(2);
    expect(manifests.services).toHaveLength(1);
  });

  test('an undefined namespace is reported at metadata.namespace and rejects the object', () => {
    const { manifests, issues } = parse({
      'm.yaml': `
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: sa
          namespace: shop
      `,
    });
    expect(lines(issues)).toEqual([
      'm.yaml:5 metadata.namespace: namespace "shop" is not defined; add a Namespace object for it',
    ]);
    expect(manifests.serviceAccounts).toEqual([]);
  });

  test.each(['default', 'kube-system', 'ambit-system'])(
    'the built-in namespace %s needs no manifest',
    (name) => {
      const { manifests, issues } = parse({
        'm.yaml': `
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: sa
          namespace: ${name}
      `,
      });
      expect(issues).toEqual([]);
      expect(manifests.serviceAccounts[0]?.meta.namespace).toBe(name);
    },
  );

  test('a namespace defined in another file counts', () => {
    const { manifests, issues } = parse({
      'sa.yaml': `
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: sa
          namespace: shop
      `,
      'ns.yaml': ns('shop'),
    });
    expect(issues).toEqual([]);
    expect(manifests.namespaces.map((n) => n.meta.name)).toEqual(['shop']);
    expect(manifests.serviceAccounts.map((n) => n.meta.namespace)).toEqual(['shop']);
  });
});

describe('kind: List', () => {
  const list = `
    apiVersion: v1
    kind: List
    items:
      - apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
      - apiVersion: v1
        kind: Service
        metadata:
          name: web
          namespace: shop
        spec:
          ports:
            - port: 0
      - apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: sa
          namespace: shop
  `;

  test('items become objects, each with the line where it starts', () => {
    const { manifests } = parse({ 'm.yaml': list });
    expect(manifests.namespaces.map((o) => [o.meta.name, o.source])).toEqual([
      ['shop', { file: 'm.yaml', line: 4 }],
    ]);
    expect(manifests.serviceAccounts.map((o) => [o.meta.name, o.source])).toEqual([
      ['sa', { file: 'm.yaml', line: 16 }],
    ]);
  });

  test('a mistake in one item is reported at its line and rejects only that item', () => {
    const { manifests, issues } = parse({ 'm.yaml': list });
    expect(issues.map((i) => [formatIssue(i), i.object])).toEqual([
      ['m.yaml:15 spec.ports[0].port: 0 is below the minimum 1', 'Service/shop/web'],
    ]);
    expect(manifests.services).toEqual([]);
  });

  test('a List whose items is not a list is an unknown kind', () => {
    const { issues } = parse({ 'm.yaml': 'apiVersion: v1\nkind: List\nitems: {}\n' });
    expect(lines(issues)[0]).toMatch(/^m\.yaml:2 kind: "List" \(v1\) is not a kind Ambit knows/);
  });
});

describe('valid objects become domain values', () => {
  test('a Deployment without replicas has one', () => {
    const { manifests, issues } = parse({
      'm.yaml': `
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          labels: {app.kubernetes.io/name: web}
        spec:
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web, tier: front}
              annotations: {ambit.dev/note: "any text at all"}
            spec:
              containers:
                - name: c
                  command: [sleep, infinity]
      `,
    });
    expect(issues).toEqual([]);
    expect(manifests.deployments).toEqual([
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        // The manifest as written, which the API serves.
        manifest: expect.objectContaining({
          kind: 'Deployment',
          metadata: expect.objectContaining({ name: 'web' }),
        }),
        meta: {
          name: 'web',
          namespace: 'default',
          labels: { 'app.kubernetes.io/name': 'web' },
          annotations: {},
        },
        source: { file: 'm.yaml', line: 1 },
        replicas: 1,
        selector: { app: 'web' },
        template: {
          labels: { app: 'web', tier: 'front' },
          annotations: { 'ambit.dev/note': 'any text at all' },
          spec: {
            containers: [{ name: 'c', command: ['sleep', 'infinity'], args: [], env: [], ports: [] }],
            serviceAccountName: 'default',
            restartPolicy: 'Always',
            terminationGracePeriodSeconds: 30,
          },
        },
      },
    ]);
  });

  test('replicas: 0 is kept', () => {
    const { manifests } = parse({
      'm.yaml': `
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replicas: 0
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              containers:
                - name: c
                  command: [sleep, infinity]
      `,
    });
    expect(manifests.deployments[0]?.replicas).toBe(0);
  });

  const service = (spec: string): string =>
    `apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n${yaml(spec)
      .split('\n')
      .map((l) => (l === '' ? l : `  ${l}`))
      .join('\n')}`;

  test.each([
    {
      what: 'defaults: targetPort = port, TCP, ClusterIP, SingleStack IPv4',
      spec: `
        selector: {app: web}
        ports:
          - port: 80
      `,
      expected: {
        type: 'ClusterIP',
        ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }],
        selector: { app: 'web' },
        ipFamilyPolicy: 'SingleStack',
        ipFamilies: ['IPv4'],
      },
    },
    {
      what: 'a named targetPort stays a name; a quoted number becomes a number',
      spec: `
        ports:
          - name: http
            port: 80
            targetPort: http
            appProtocol: http
          - name: dns
            port: 53
            targetPort: "5353"
            protocol: UDP
      `,
      expected: {
        type: 'ClusterIP',
        ports: [
          { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP', appProtocol: 'http' },
          { name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' },
        ],
        ipFamilyPolicy: 'SingleStack',
        ipFamilies: ['IPv4'],
      },
    },
    {
      what: 'the same port number over TCP and UDP',
      spec: `
        ports:
          - {name: dns-tcp, port: 53}
          - {name: dns-udp, port: 53, protocol: UDP}
      `,
      expected: {
        type: 'ClusterIP',
        ports: [
          { name: 'dns-tcp', port: 53, targetPort: 53, protocol: 'TCP' },
          { name: 'dns-udp', port: 53, targetPort: 53, protocol: 'UDP' },
        ],
        ipFamilyPolicy: 'SingleStack',
        ipFamilies: ['IPv4'],
      },
    },
    {
      what: 'PreferDualStack gives IPv4 then IPv6',
      spec: `
        ipFamilyPolicy: PreferDualStack
        ports: [{port: 80}]
      `,
      expected: {
        type: 'ClusterIP',
        ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }],
        ipFamilyPolicy: 'PreferDualStack',
        ipFamilies: ['IPv4', 'IPv6'],
      },
    },
    {
      what: 'RequireDualStack with IPv6 first adds IPv4 second',
      spec: `
        ipFamilyPolicy: RequireDualStack
        ipFamilies: [IPv6]
        clusterIP: fd00:10:96::a
        ports: [{port: 80}]
      `,
      expected: {
        type: 'ClusterIP',
        clusterIP: 'fd00:10:96::a',
        ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }],
        ipFamilyPolicy: 'RequireDualStack',
        ipFamilies: ['IPv6', 'IPv4'],
      },
    },
    {
      what: 'SingleStack IPv6',
      spec: `
        ipFamilies: [IPv6]
        type: NodePort
        ports: [{port: 80, nodePort: 30080}]
      `,
      expected: {
        type: 'NodePort',
        ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }],
        ipFamilyPolicy: 'SingleStack',
        ipFamilies: ['IPv6'],
      },
    },
    {
      what: 'a headless Service needs no ports',
      spec: `
        clusterIP: None
        selector: {app: web}
      `,
      expected: {
        type: 'ClusterIP',
        clusterIP: 'None',
        ports: [],
        selector: { app: 'web' },
        ipFamilyPolicy: 'SingleStack',
        ipFamilies: ['IPv4'],
      },
    },
    {
      what: 'an empty selector means no selector',
      spec: `
        selector: {}
        ports: [{port: 80}]
      `,
      expected: {
        type: 'ClusterIP',
        ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }],
        ipFamilyPolicy: 'SingleStack',
        ipFamilies: ['IPv4'],
      },
    },
  ])('Service: $what', ({ spec, expected }) => {
    const { manifests, issues } = parse({ 'm.yaml': service(spec) });
    expect(lines(issues)).toEqual([]);
    expect(manifests.services).toEqual([
      {
        apiVersion: 'v1',
        kind: 'Service',
        meta: { name: 'web', namespace: 'default', labels: {}, annotations: {} },
        source: { file: 'm.yaml', line: 1 },
        ...expected,
      },
    ]);
  });

  test('a Pod keeps env values and fieldRefs in order, and its probes get defaults', () => {
    const { manifests, issues } = parse({
      'm.yaml': `
        apiVersion: v1
        kind: Pod
        metadata:
          name: client
          namespace: kube-system
        spec:
          nodeName: node-2
          serviceAccountName: client-sa
          restartPolicy: OnFailure
          terminationGracePeriodSeconds: 0
          containers:
            - name: app
              image: busybox
              command: [sh, -c]
              args: ["echo $(POD_NAME)"]
              workingDir: /srv
              env:
                - name: MODE
                  value: ""
                - name: POD_NAME
                  valueFrom:
                    fieldRef: {fieldPath: metadata.name}
                - name: POD_IP
                  valueFrom:
                    fieldRef: {fieldPath: status.podIP}
              ports:
                - name: http
                  containerPort: 8080
                - containerPort: 53
                  protocol: UDP
              readinessProbe:
                httpGet: {port: http}
              livenessProbe:
                exec: {command: [cat, /tmp/healthy]}
                periodSeconds: 2
                failureThreshold: 1
            - name: sidecar
              command: [sleep, infinity]
              readinessProbe:
                tcpSocket: {port: "8080"}
                initialDelaySeconds: 3
                timeoutSeconds: 4
                successThreshold: 2
      `,
    });
    expect(issues).toEqual([]);
    const pod = manifests.pods[0];
    expect(pod?.meta).toEqual({ name: 'client', namespace: 'kube-system', labels: {}, annotations: {} });
    expect(pod?.spec).toEqual({
      nodeName: 'node-2',
      serviceAccountName: 'client-sa',
      restartPolicy: 'OnFailure',
      terminationGracePeriodSeconds: 0,
      containers: [
        {
          name: 'app',
          image: 'busybox',
          command: ['sh', '-c'],
          args: ['echo $(POD_NAME)'],
          workingDir: '/srv',
          env: [
            { name: 'MODE', value: '' },
            { name: 'POD_NAME', fieldRef: 'metadata.name' },
            { name: 'POD_IP', fieldRef: 'status.podIP' },
          ],
          ports: [
            { name: 'http', containerPort: 8080, protocol: 'TCP' },
            { containerPort: 53, protocol: 'UDP' },
          ],
          readinessProbe: {
            action: { type: 'httpGet', path: '/', port: 'http', scheme: 'HTTP' },
            initialDelaySeconds: 0,
            periodSeconds: 10,
            timeoutSeconds: 1,
            successThreshold: 1,
            failureThreshold: 3,
          },
          livenessProbe: {
            action: { type: 'exec', command: ['cat', '/tmp/healthy'] },
            initialDelaySeconds: 0,
            periodSeconds: 2,
            timeoutSeconds: 1,
            successThreshold: 1,
            failureThreshold: 1,
          },
        },
        {
          name: 'sidecar',
          command: ['sleep', 'infinity'],
          args: [],
          env: [],
          ports: [],
          readinessProbe: {
            action: { type: 'tcpSocket', port: 8080 },
            initialDelaySeconds: 3,
            periodSeconds: 10,
            timeoutSeconds: 4,
            successThreshold: 2,
            failureThreshold: 3,
          },
        },
      ],
    });
  });

  test('without requireCommand a container may leave command to the image', () => {
    const { manifests, issues } = parse(
      {
        'm.yaml': `
          apiVersion: v1
          kind: Pod
          metadata:
            name: p
          spec:
            containers:
              - name: c
                image: nginx
        `,
      },
      { requireCommand: false },
    );
    expect(issues).toEqual([]);
    expect(manifests.pods[0]?.spec.containers[0]?.command).toEqual([]);
  });

  test('without a node list any valid nodeName is accepted', () => {
    const { manifests, issues } = parse(
      {
        'm.yaml': `
          apiVersion: v1
          kind: Pod
          metadata:
            name: p
          spec:
            nodeName: worker-7
            containers:
              - name: c
                command: [sleep, infinity]
        `,
      },
      { requireCommand: true },
    );
    expect(issues).toEqual([]);
    expect(manifests.pods[0]?.spec.nodeName).toBe('worker-7');
  });

  test('mesh config kinds keep their whole body, and their parsed value with every default applied', () => {
    const { manifests, issues } = parse({
      'm.yaml': `
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata:
          name: web
        spec:
          parentRefs: [{name: waypoint}]
      `,
    });
    expect(issues).toEqual([]);
    expect(manifests.kept).toEqual([
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        meta: { name: 'web', namespace: 'default', labels: {}, annotations: {} },
        source: { file: 'm.yaml', line: 1 },
        body: {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'HTTPRoute',
          metadata: { name: 'web' },
          spec: { parentRefs: [{ name: 'waypoint' }] },
        },
        parsed: {
          kind: 'HTTPRoute',
          value: {
            namespace: 'default',
            name: 'web',
            labels: {},
            parentRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }],
            hostnames: [],
            rules: [
              {
                matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }],
                filters: [],
                backendRefs: [],
              },
            ],
          },
        },
      },
    ]);
  });

  test('a Namespace is cluster-scoped', () => {
    const { manifests } = parse({
      'm.yaml': `
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
          labels: {ambit.dev/dataplane-mode: ambient}
      `,
    });
    expect(manifests.namespaces[0]?.meta).toEqual({
      name: 'shop',
      namespace: '',
      labels: { 'ambit.dev/dataplane-mode': 'ambient' },
      annotations: {},
    });
  });

  test('objects with errors are left out; valid objects of the same file are kept', () => {
    const { manifests, issues } = parse({
      'm.yaml': `
        # first document: fine
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: good
        ---
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: bad
          labels: {version: 1}
        ---
        # an empty document is skipped
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: fine
        spec:
          ports: [{port: 80}]
      `,
    });
    expect(lines(issues)).toEqual(['m.yaml:11 metadata.labels.version: 1 is not a string (quote it)']);
    expect(issues[0]?.object).toBe('ServiceAccount/default/bad');
    expect(manifests.serviceAccounts.map((o) => [o.meta.name, o.source.line])).toEqual([['good', 2]]);
    expect(manifests.services.map((o) => [o.meta.name, o.source.line])).toEqual([['fine', 15]]);
  });

  test('a YAML error in one document leaves the other documents of the file', () => {
    const { manifests, issues } = parse({
      'm.yaml': `
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
          name: store
        ---
        apiVersion: v1
        kind: Namespace
        metadata:
          name: other
      `,
    });
    expect(lines(issues)).toEqual(['m.yaml:5 invalid YAML: Map keys must be unique']);
    expect(issues[0]?.object).toBeUndefined();
    expect(manifests.namespaces.map((n) => n.meta.name)).toEqual(['other']);
  });
});

test('a manifest set with many mistakes reports every one, sorted by file and line', () => {
  const { manifests, issues } = parse({
    'apps.yaml': `
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: backend
        namespace: shop
      spec:
        replicas: -2
        selector:
          matchLabels: {app: backend}
        template:
          metadata:
            labels: {app: backend}
          spec:
            containers:
              - name: api
                command: [node, server.js]
                ports:
                  - name: http
                    containerPort: 8080
                env:
                  - name: PORT
                    value: 8080
      ---
      apiVersion: v1
      kind: Service
      metadata:
        name: backend
        namespace: shop
      spec:
        selector: {app: backend}
        ports:
          - name: http
            port: 80
            targetPort: http
          - port: 9090
    `,
    'ns.yaml': `
      apiVersion: v1
      kind: Namespace
      metadata:
        name: shop
      ---
      apiVersion: v1
      kind: Namspace
      metadata:
        name: extra
    `,
    'client.yaml': `
      apiVersion: v1
      kind: Pod
      metadata:
        name: client
        namespace: shop
      spec:
        nodeName: node-3
        containers:
          - name: curl
            image: curlimages/curl
            readinessProbe:
              exec: {command: ["true"]}
              httpGet: {port: 80}
      ---
      apiVersion: security.istio.io/v1
      kind: AuthorizationPolicy
      metadata:
        name: allow
        namespace: shop
    `,
  });
  expect(lines(issues)).toEqual([
    'apps.yaml:7 spec.replicas: -2 is negative',
    'apps.yaml:22 spec.template.spec.containers[0].env[0].value: 8080 is not a string (quote it)',
    'apps.yaml:35 spec.ports[1].name: is required when a Service has more than one port',
    expect.stringMatching(/^ns\.yaml:7 kind: "Namspace" \(v1\) is not a kind Ambit knows; known kinds: /),
    'client.yaml:7 spec.nodeName: "node-3" is not a node of this cluster (nodes: node-1, node-2)',
    'client.yaml:9 spec.containers[0].command: is required: local mode runs the command on this host, so there is no image entrypoint to use',
    'client.yaml:11 spec.containers[0].readinessProbe: sets exec and httpGet; exactly one of exec, httpGet or tcpSocket is allowed',
    'client.yaml:15 apiVersion: "security.istio.io/v1" is Istio\'s; Ambit reads the same fields under "security.ambit.dev/v1alpha1"',
  ]);
  expect(issues.every((i) => i.severity === 'error')).toBe(true);
  expect(manifests.namespaces.map((n) => n.meta.name)).toEqual(['shop']);
  expect(count(manifests)).toBe(1);
});

describe('formatPath', () => {
  test.each<[FieldPath, string]>([
    [[], ''],
    [['spec'], 'spec'],
    [['spec', 'ports', 0, 'port'], 'spec.ports[0].port'],
    [['metadata', 'labels', 'app.kubernetes.io/name'], 'metadata.labels["app.kubernetes.io/name"]'],
    [['metadata', 'annotations', 'a b'], 'metadata.annotations["a b"]'],
    [['spec', 'selector', 'my-app_v2'], 'spec.selector.my-app_v2'],
    [['data', '1st'], 'data["1st"]'],
    [['data', 'say "hi"'], 'data["say \\"hi\\""]'],
    [['items', 2, 'spec'], 'items[2].spec'],
    [[0, 'a'], '[0].a'],
    [['x.y', 'z'], '["x.y"].z'],
  ])('%j -> %s', (path, text) => {
    expect(formatPath(path)).toBe(text);
  });
});

describe('formatIssue', () => {
  test.each<[ConfigIssue, string]>([
    [
      {
        severity: 'error',
        file: 'a.yaml',
        line: 3,
        path: 'spec.ports[0].port',
        message: '"http" is not a number',
      },
      'a.yaml:3 spec.ports[0].port: "http" is not a number',
    ],
    [
      { severity: 'error', file: 'a.yaml', line: 1, path: '', message: 'invalid YAML: x' },
      'a.yaml:1 invalid YAML: x',
    ],
    [
      { severity: 'warning', file: 'dir/b.yml', line: 9, path: 'spex', message: 'unknown field' },
      'dir/b.yml:9 warning: spex: unknown field',
    ],
    [{ severity: 'warning', file: 'b.yml', line: 2, path: '', message: 'odd' }, 'b.yml:2 warning: odd'],
  ])('%# %s', (issue, text) => {
    expect(formatIssue(issue)).toBe(text);
  });
});

describe('Fields rules that no manifest field reaches yet', () => {
  function collect(): { sink: IssueSink; found: string[] } {
    const found: string[] = [];
    const add = (sev: string) => (path: FieldPath, message: string) => {
      found.push(`${sev} ${formatPath(path)}: ${message}`);
    };
    return { sink: { error: add('error'), warn: add('warning') }, found };
  }

  test.each([
    {
      what: 'bool accepts a boolean',
      value: { on: true },
      read: (f: Fields) => f.bool('on'),
      result: true,
      issues: [],
    },
    {
      what: 'bool rejects a string',
      value: { on: 'yes' },
      read: (f: Fields) => f.bool('on'),
      result: undefined,
      issues: ['error x.on: "yes" is not a boolean (true or false)'],
    },
    {
      what: 'a required bool that is missing',
      value: {},
      read: (f: Fields) => f.bool('on', { required: true }),
      result: undefined,
      issues: ['error x.on: is required'],
    },
    {
      what: 'a list above its maximum length',
      value: { l: [1, 2, 3] },
      read: (f: Fields) => f.list('l', (v) => v, { max: 2 }),
      result: [1, 2, 3],
      issues: ['error x.l: has 3 items; at most 2 are allowed'],
    },
    {
      what: 'stringList checks each item',
      value: { l: ['/a', 'b'] },
      read: (f: Fields) => f.stringList('l', { check: absolutePath }),
      result: ['/a'],
      issues: ['error x.l[1]: "b" is not an absolute path'],
    },
    {
      what: 'a mapping where a string belongs',
      value: { s: { a: 1 } },
      read: (f: Fields) => f.string('s'),
      result: undefined,
      issues: ['error x.s: a mapping is not a string'],
    },
    {
      what: 'allowEmpty accepts an empty required string',
      value: { s: '' },
      read: (f: Fields) => f.string('s', { allowEmpty: true, required: true }),
      result: '',
      issues: [],
    },
    {
      what: 'null counts as missing',
      value: { n: null },
      read: (f: Fields) => f.int('n', { required: true }),
      result: undefined,
      issues: ['error x.n: is required'],
    },
    {
      what: 'int below a minimum other than 0',
      value: { n: 5 },
      read: (f: Fields) => f.int('n', { min: 10 }),
      result: undefined,
      issues: ['error x.n: 5 is below the minimum 10'],
    },
  ])('$what', ({ value, read, result, issues }) => {
    const { sink, found } = collect();
    const f = Fields.of(value, ['x'], sink);
    expect(f).toBeDefined();
    if (f === undefined) return;
    expect(read(f)).toEqual(result);
    expect(found).toEqual(issues);
  });

  test('Fields.of names what it expected', () => {
    const { sink, found } = collect();
    expect(Fields.of(null, ['spec'], sink, 'a pod spec')).toBeUndefined();
    expect(found).toEqual(['error spec: expected a pod spec, got null']);
  });
});

describe('validators', () => {
  test.each([
    ['dns1123Label', 'web-1', undefined, dns1123Label],
    ['dns1123Label', '-web', 'is not a valid name', dns1123Label],
    ['dns1123Label', 'web-', 'is not a valid name', dns1123Label],
    ['dns1123Label', 'a'.repeat(63), undefined, dns1123Label],
    ['dns1123Subdomain', 'web.shop.v1', undefined, dns1123Subdomain],
    ['dns1123Subdomain', 'web..shop', 'is not a valid name', dns1123Subdomain],
    ['qualifiedName', 'app.kubernetes.io/name', undefined, qualifiedName],
    ['qualifiedName', 'My_Key.v1', undefined, qualifiedName],
    [
      'qualifiedName',
      `example.com/${'k'.repeat(64)}`,
      'must have a name part of 1 to 63 characters',
      qualifiedName,
    ],
    ['qualifiedName', 'key_', 'is not a valid key', qualifiedName],
    ['labelValue', '', undefined, labelValue],
    ['labelValue', 'v1.2_rc-3', undefined, labelValue],
    ['labelValue', 'v1.', 'is not a valid label value', labelValue],
    ['ianaSvcName', 'http-alt', undefined, ianaSvcName],
    ['ianaSvcName', '-http', 'is not a valid port name', ianaSvcName],
    ['ipAddress', '10.96.0.10', undefined, ipAddress],
    ['ipAddress', 'fd00:10:96::a', undefined, ipAddress],
    ['ipAddress', 'localhost', 'is not an IP address', ipAddress],
    ['cidr', '10.244.0.0/16', undefined, cidr],
    ['cidr', 'fd00:10:244::/48', undefined, cidr],
    ['cidr', '10.244.0.0/33', 'is not a CIDR: prefix length must be 0 to 32', cidr],
    ['cidr', 'fd00::/129', 'is not a CIDR: prefix length must be 0 to 128', cidr],
    ['cidr', '10.0.0.0/x', 'is not a CIDR: prefix length must be 0 to 32', cidr],
    ['cidr', '10.0.0.0/8/8', 'is not a CIDR (address/bits)', cidr],
    ['cidr', 'ten/8', 'is not a CIDR: the address part is not an IP address', cidr],
    ['absolutePath', '/srv', undefined, absolutePath],
    ['absolutePath', './srv', 'is not an absolute path', absolutePath],
    ['envVarName', 'my.var-1', undefined, envVarName],
    ['envVarName', 'A B', 'is not a valid environment variable name', envVarName],
  ] as const)('%s(%j) -> %j', (_name, value, reason, check) => {
    const result = check(value);
    if (reason === undefined) expect(result).toBeUndefined();
    else expect(result).toContain(reason);
  });
});

describe('regressions', () => {
  test('a duplicate check names the item at its own index when an earlier item is broken', () => {
    const { issues } = parse({
      's.yaml': `
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          ports:
            - port: x
            - port: 80
            - port: 80
      `,
    });
    expect(lines(issues)).toEqual([
      's.yaml:7 spec.ports[0].port: "x" is not a number',
      's.yaml:8 spec.ports[1].name: is required when a Service has more than one port',
      's.yaml:9 spec.ports[2].name: is required when a Service has more than one port',
      's.yaml:9 spec.ports[2].port: 80/TCP is declared twice',
    ]);
  });

  test('empty optional strings mean unset: namespace default, service account default', () => {
    const { manifests, issues } = parse({
      'p.yaml': `
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
          namespace: ""
        spec:
          serviceAccountName: ""
          nodeName: ""
          containers:
            - name: c
              command: [sleep, infinity]
              workingDir: ""
      `,
    });
    expect(lines(issues)).toEqual([]);
    const pod = manifests.pods[0]!;
    expect(pod.meta.namespace).toBe('default');
    expect(pod.spec.serviceAccountName).toBe('default');
    expect(pod.spec.nodeName).toBeUndefined();
    expect(pod.spec.containers[0]!.workingDir).toBeUndefined();
  });

  test('a duplicate keeps the first copy and rejects the later one', () => {
    const { manifests } = parse({
      'a.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: one\n  labels: {copy: first}\n',
      'b.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: one\n  labels: {copy: second}\n',
    });
    expect(manifests.namespaces.map((n) => n.meta.labels.copy)).toEqual(['first']);
  });

  test('an object that cannot be parsed still names itself in its issues', () => {
    const { issues } = parse({
      'p.yaml': 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n  namespace: shop\nspec: {}\n',
    });
    expect(issues.filter((i) => i.severity === 'error').map((i) => i.object)).toContain('Pod/shop/bad');
  });
});

describe('pod spec fields the kubelet layout depends on', () => {
  test('hostNetwork and container resources are kept', () => {
    const r = parse({
      'm.yaml': `
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          hostNetwork: true
          containers:
            - name: c
              command: [sleep, infinity]
              resources:
                requests: { cpu: 100m }
                limits: { cpu: 1, memory: 64Mi }
      `,
    });
    expect(lines(r.issues)).toEqual([]);
    expect(r.manifests.pods[0]?.spec).toMatchObject({
      hostNetwork: true,
      containers: [{ resources: { requests: { cpu: '100m' }, limits: { cpu: '1', memory: '64Mi' } } }],
    });
  });
});
