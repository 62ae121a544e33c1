/** Test helpers for ports, processes and waiting on events without sleeps. */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer } from 'node:net';

/** A TCP port that was free a moment ago on 127.0.0.1 (for peers that need a fixed port number). */
export async function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** A port free for both UDP and TCP (SIP listens on both). */
export async function freeUdpTcpPort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freeTcpPort(host);
    const socket = createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('error', () => resolve(false));
      socket.bind(port, host, () => resolve(true));
    });
    socket.close();
    if (ok) return port;
  }
  throw new Error('no free UDP+TCP port');
}

/** Resolves when `predicate` returns true, polling every `intervalMs`; rejects after `timeoutMs`. */
export async function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what = 'condition',
  intervalMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Waits for one event with a timeout. */
export async function waitEvent<T = unknown>(
  emitter: NodeJS.EventEmitter,
  event: string,
  timeoutMs: number,
): Promise<T[]> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    return (await once(emitter, event, { signal })) as T[];
  } catch (e) {
    if (signal.aborted) throw new Error(`timed out after ${timeoutMs} ms waiting for '${event}'`);
    throw e;
  }
}

/** A child process whose output is collected, with a wait for a line matching a pattern. */
export class Proc {
  readonly child: ChildProcess;
  output = '';
  private readonly exited: Promise<number | null>;

  constructor(command: string, args: string[], options: SpawnOptions = {}) {
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
    this.child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.output += d;
    });
    this.child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.output += d;
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    let match: RegExpMatchArray | null = null;
    await waitUntil(
      () => {
        match = this.output.match(pattern);
        return match !== null || this.child.exitCode !== null;
      },
      timeoutMs,
      `output ${pattern}`,
    );
    if (match === null) throw new Error(`process exited before printing ${pattern}; output:\n${this.output}`);
    return match;
  }

  /** Waits for exit and returns the code (null when killed by a signal). */
  async wait(timeoutMs: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`process did not exit within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops the process (SIGTERM, then SIGKILL after `graceMs`) and waits for it. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGCONT');
    this.child.kill('SIGTERM');
    try {
      await this.wait(graceMs);
    } catch {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}
