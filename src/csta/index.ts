/** CSTA XML (ECMA-323/354): codec, framing, message layer, client link and server connection. */
export * from './codec.ts';
export * from './framing.ts';
export * from './invoke.ts';
export * from './link.ts';
export * from './messages.ts';
export {
  type Codec,
  CstaEncodeError,
  type Edition,
  type Infer,
  isCstaNamespace,
  type Preserved,
  type UnknownChild,
} from './schema.ts';
export * from './server.ts';
export * from './session.ts';
export * from './socket.ts';
