/** The few parts of @xmpp/client (untyped) that the interop test uses. */
declare module '@xmpp/client' {
  export type XmlStanza = XmlElement;
  interface XmlElement {
    name: string;
    attrs: Record<string, string>;
    children: unknown[];
    is(name: string, xmlns?: string): boolean;
    getChild(name: string, xmlns?: string): XmlElement | undefined;
    getChildText(name: string, xmlns?: string): string | null;
  }
  interface XmppClient {
    on(event: string, listener: (arg: never) => void): void;
    start(): Promise<{ toString(): string }>;
    stop(): Promise<void>;
    send(element: XmlElement): Promise<void>;
    iqCaller: { request(element: XmlElement): Promise<XmlElement> };
    iqCallee: { get(ns: string, name: string, handler: () => XmlElement): void };
  }
  export function client(options: Record<string, string>): XmppClient;
  export function xml(
    name: string,
    attrs?: Record<string, string>,
    ...children: Array<XmlElement | string>
  ): XmlElement;
}
