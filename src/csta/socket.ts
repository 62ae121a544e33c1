/**
 * Binds a CstaSession to a TCP socket with the 8-byte-header framing. The first framing error closes
 * the socket: after a wrong length no later frame boundary can be trusted.
 */
import type { Socket } from 'node:net';
import { encodeFrame, HeaderFrameSplitter } from './framing.ts';
import { type CstaLogger, CstaSession, type CstaSessionOptions } from './session.ts';

export interface FramedSessionOptions extends Omit<CstaSessionOptions, 'send'> {
  /** Largest accepted frame, header included (default 65 535). */
  maxFrameBytes?: number;
}

export interface FramedSession {
  session: CstaSession;
  /** Resolves once with the reason when the socket is gone (and the session closed). */
  closed: Promise<string>;
}

/**
 * Runs a session over `socket` until either ends. Closing the session does not close the socket;
 * call socket.destroy() for that.
 */
export function attachSession(socket: Socket, options: FramedSessionOptions, log: CstaLogger): FramedSession {
  let closeReason: string | undefined;
  let resolveClosed!: (reason: string) => void;
  const closed = new Promise<string>((resolve) => {
    resolveClosed = resolve;
  });
  const session = new CstaSession({
    ...options,
    log,
    send: (invokeId, xml) => {
      if (socket.destroyed || !socket.writable) throw new Error('socket is closed');
      socket.write(encodeFrame(invokeId, xml));
    },
  });
  const finish = (reason: string) => {
    if (closeReason !== undefined) return;
    closeReason = reason;
    session.close(reason);
    resolveClosed(reason);
  };
  const splitter = new HeaderFrameSplitter(
    {
      onFrame: (frame) => session.receive(frame.invokeId, frame.body),
      onError: (error) => {
        log.warn(`csta: framing error, closing the connection: ${error.message}`);
        finish(`framing error: ${error.message}`);
        socket.destroy();
      },
      onOddVersion: (version) =>
        log.info(`csta: peer writes 0x${version.toString(16).padStart(4, '0')} as the header version`),
    },
    options.maxFrameBytes === undefined ? {} : { maxFrameBytes: options.maxFrameBytes },
  );
  socket.on('data', (chunk: Buffer) => {
    try {
      splitter.push(chunk);
    } catch (e) {
      // A bug in a handler must not crash the process: drop this connection instead.
      log.warn(`csta: error while handling input: ${(e as Error).stack ?? String(e)}`);
      finish(`internal error: ${(e as Error).message}`);
      socket.destroy();
    }
  });
  socket.on('error', (e) => finish(`socket error: ${e.message}`));
  socket.on('close', () => {
    const partial = splitter.bufferedBytes;
    finish(
      partial > 0
        ? `peer closed the connection in the middle of a frame (${partial} bytes)`
        : 'connection closed',
    );
  });
  return { session, closed };
}
