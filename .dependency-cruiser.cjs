/**
 * The house's boundaries, checked by `make lint` (and so by CI). A newcomer can read the rules as the
 * architecture: daemons are composition roots over shared mesh code and never import one another;
 * shared code never reaches up into a daemon; folders form no cycles; the native binding is touched in
 * one adapter. (That only config code reads process.env is biome's noProcessEnv, in biome.json.)
 */
const DAEMONS = ['node-agent', 'node-proxy', 'l7-waypoint', 'control-plane', 'local', 'ctl'];
const daemons = `^src/(${DAEMONS.join('|')})/`;

module.exports = {
  forbidden: [
    {
      name: 'no-daemon-imports-another',
      comment:
        'A daemon folder never imports another daemon folder; what two daemons share lives in shared code. ' +
        'The one exception: the CLI drives local mode (src/ctl -> src/local).',
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { path: daemons, pathNot: ['^src/$1/', '^src/local/'] },
    },
    {
      name: 'no-daemon-imports-another-local',
      comment: 'Only the CLI may import local mode; the mesh daemons learn the cluster through a ClusterSource.',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/ctl/', '^src/local/'] },
      to: { path: '^src/local/' },
    },
    {
      name: 'no-shared-imports-daemon',
      comment: 'Shared mesh code (everything outside the daemon folders) never imports a daemon.',
      severity: 'error',
      from: { path: '^src/', pathNot: daemons },
      to: { path: daemons },
    },
    {
      name: 'no-folder-cycles',
      comment: 'Folders form layers: no two folders import each other, directly or around a cycle.',
      severity: 'error',
      scope: 'folder',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-module-cycles',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-kube-client-in-api-less-daemons',
      comment:
        'The node proxy and the waypoint never call the Kubernetes API (their pods hold no API token): ' +
        'no path of imports, through shared code included, may reach the Kubernetes client.',
      severity: 'error',
      from: { path: '^src/(node-proxy|l7-waypoint)/' },
      to: { path: '^src/kube/client\\.ts$', reachable: true },
    },
    {
      name: 'ffi-only-in-bpf',
      comment: 'The native binding (ffi-rs) is touched in exactly one adapter: src/bpf/.',
      severity: 'error',
      from: { pathNot: '^src/bpf/' },
      to: { path: 'node_modules/ffi-rs|^ffi-rs$' },
    },
    {
      name: 'process-module-only-in-config',
      comment: 'Environment and process settings are read by config code only (see biome noProcessEnv).',
      severity: 'error',
      from: { pathNot: ['^src/config/', '/config\\.ts$', '^src/ctl/settings\\.ts$'] },
      to: { path: '^(node:)?process$', dependencyTypes: ['core'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
