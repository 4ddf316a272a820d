import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * The privileged suite needs root, network namespaces, cgroup v2 and nftables. When it cannot run it
 * fails here, loudly: a skipped end-to-end suite would look like a passing one.
 */
export default function setup(): void {
  const problems: string[] = [];
  if (process.getuid?.() !== 0)
    problems.push('not running as root (the e2e suite creates network namespaces and cgroups)');
  if (!existsSync('dist/ctl/main.js')) problems.push('dist/ctl/main.js is missing: run `make build` first');
  for (const tool of ['ip', 'nft', 'nsenter', 'curl']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      problems.push(`${tool} is not installed (run \`make deps\`)`);
    }
  }
  if (problems.length === 0) {
    try {
      execFileSync('ip', ['netns', 'add', 'ambit-e2e-probe']);
      execFileSync('ip', ['netns', 'delete', 'ambit-e2e-probe']);
    } catch (err) {
      problems.push(`cannot create a network namespace: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) {
    throw new Error(`the privileged end-to-end suite cannot run here:\n  - ${problems.join('\n  - ')}`);
  }
}
