/** Whether a process of this machine is alive. */

/** Whether process `pid` runs (one of another user counts: signalling it is merely not allowed). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
