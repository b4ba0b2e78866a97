import type { ChildProcess } from 'node:child_process';

/**
 * A child's exit code once its stdout and stderr have been read to their end. Node can emit 'exit'
 * before the last chunk of output is delivered (a loaded machine does), so whoever reads the
 * output after the exit waits for 'close'. A descendant that inherited the pipes (a task a killed
 * agent left behind) can hold them open for ever: `graceMs` after the exit, the code comes anyway.
 */
export function exitAfterOutput(child: ChildProcess, graceMs = 2000): Promise<number | null> {
  return new Promise((resolve) => {
    let code: number | null = null;
    let timer: NodeJS.Timeout | undefined;
    child.once('exit', (c) => {
      code = c;
      timer = setTimeout(() => resolve(code), graceMs);
      timer.unref();
    });
    child.once('close', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
}
