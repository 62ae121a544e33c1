/**
 * XML errors, each carrying the RFC 6120 §4.9.3 stream error condition it maps to, so the XMPP layer
 * can send `<stream:error>` without interpreting messages, and the CSTA layer can log one clear line.
 */
export type XmlErrorCondition =
  | 'not-well-formed' // violates XML well-formedness, bad UTF-8, undefined entity (§4.9.3.13)
  | 'restricted-xml' // DOCTYPE, comment, processing instruction (§4.9.3.18, §11.1)
  | 'policy-violation' // a configured limit was exceeded (§4.9.3.14)
  | 'unsupported-encoding' // declared encoding other than UTF-8 (§4.9.3.22)
  | 'invalid-namespace' // wrong root namespace (§4.9.3.10)
  | 'bad-format'; // well-formed but unusable: text at stream level, no root element (§4.9.3.1)

export class XmlError extends Error {
  readonly condition: XmlErrorCondition;

  constructor(condition: XmlErrorCondition, message: string) {
    super(message);
    this.name = 'XmlError';
    this.condition = condition;
  }
}
