#!/usr/bin/python3
"""A slixmpp client with XEP-0198 (stream management, resumption) and XEP-0199, for liveness tests.

Logs in over plaintext c2s (loopback), sends presence and directed presence to the gateway component,
then prints one line per fact, flushed:
  SM_ENABLED <id>       stream management is on
  READY <full jid>      session started
  MSG <from> <body>     a message arrived
  ACKED                 the server acknowledged one of our stanzas
Reads stdin lines: "msg <jid> <body>" sends a chat message; "quit" disconnects cleanly.
"""
import argparse, asyncio, sys
import slixmpp


def out(*parts):
    print(*parts, flush=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, a):
        super().__init__(a.jid, a.password)
        self.a = a
        self.register_plugin("xep_0199")
        self.register_plugin("xep_0198")
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("sm_enabled", lambda s: out("SM_ENABLED", s["id"]))
        self.add_event_handler("stanza_acked", lambda s: out("ACKED"))
        self.add_event_handler("message", lambda m: out("MSG", m["from"], m["body"]))

    async def start(self, event):
        self.send_presence()
        self.send_presence(pto=self.a.gateway)
        out("READY", self.boundjid.full)
        loop = asyncio.get_event_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = (await reader.readline()).decode().strip()
            if line == "" or line == "quit":
                self.disconnect()
                return
            if line.startswith("msg "):
                _, to, body = line.split(" ", 2)
                self.send_message(mto=to, mbody=body, mtype="chat")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jid", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--gateway", default="cti.localhost")
    a = ap.parse_args()
    xmpp = Client(a)
    xmpp.connect(address=("127.0.0.1", a.port), use_ssl=False, force_starttls=False, disable_starttls=True)
    xmpp.process(forever=False)


if __name__ == "__main__":
    main()
