/** XML namespaces of the XMPP core and the extensions the project implements. */
export const NS = {
  client: 'jabber:client',
  component: 'jabber:component:accept',
  stream: 'http://etherx.jabber.org/streams',
  streams: 'urn:ietf:params:xml:ns:xmpp-streams',
  stanzas: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  tls: 'urn:ietf:params:xml:ns:xmpp-tls',
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  bind: 'urn:ietf:params:xml:ns:xmpp-bind',
  session: 'urn:ietf:params:xml:ns:xmpp-session',
  roster: 'jabber:iq:roster',
  version: 'jabber:iq:version',
  discoInfo: 'http://jabber.org/protocol/disco#info',
  discoItems: 'http://jabber.org/protocol/disco#items',
  ping: 'urn:xmpp:ping',
  delay: 'urn:xmpp:delay',
  sm: 'urn:xmpp:sm:3',
} as const;
