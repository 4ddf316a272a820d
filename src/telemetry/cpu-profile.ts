import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

/**
 * Records a V8 CPU profile of this process until it exits, then writes it to `path` (open it in Chrome
 * DevTools or speedscope). For finding where a daemon spends its time under load.
 */
export function profileUntilExit(path: string): void {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable', () => session.post('Profiler.start'));
  const stop = (): void => {
    session.post('Profiler.stop', (err, res) => {
      if (err === null) writeFileSync(path, JSON.stringify(res.profile));
    });
  };
  process.once('exit', stop);
}
