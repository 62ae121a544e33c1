#!/usr/bin/python3
"""A CTI client on slixmpp (Debian python3-slixmpp; run with /usr/bin/python3) for end-to-end tests.

Logs in over plaintext c2s, sends directed presence to the gateway (as docs/protocol.md asks), then
runs the requests given on the command line in order and answers every CSTA event iq with a result.
Prints one line per fact, flushed, for the test to wait on:
  READY <full jid>
  RESULT <request> <response element name> <monitorCrossRefID or callID or ->
  ERROR <request> <type> <condition> <CSTA error child or ->
  EVENT <event name> <monitorCrossRefID>
  MESSAGE <from> <body, newlines as " | ">
  PRESENCE <from> <type or show or "available"> <status or ->
Reads lines from stdin: "quit" disconnects cleanly; "csta <xml>" sends one more request;
"say <jid> <text>" sends a chat message; "subscribe <jid>" asks for that contact's presence
(subscription requests from others are approved automatically).
"""
import argparse, asyncio, sys
import xml.etree.ElementTree as ET
import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher.base import MatcherBase

EDITIONS = {"http://www.ecma-international.org/standards/ecma-323/csta/ed%d" % n for n in (3, 4, 5, 6)}
ED4 = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def out(*parts):
    print(*parts, flush=True)


class CstaIq(MatcherBase):
    def match(self, stanza):
        x = stanza.xml
        return (x.tag.endswith("}iq") and x.get("type") in ("get", "set") and len(x) == 1
                and x[0].tag.split("}")[0].lstrip("{") in EDITIONS)


def local(tag):
    return tag.split("}")[-1]


class Cti(slixmpp.ClientXMPP):
    def __init__(self, a):
        super().__init__(a.jid, a.password)
        self.a = a
        self.register_plugin("xep_0199")
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_auth", lambda *_: (out("AUTH FAILED"), self.disconnect()))
        self.add_event_handler("disconnected", lambda *_: out("DISCONNECTED"))
        self.register_handler(Callback("csta-event", CstaIq(None), self.on_event))
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("presence", self.on_presence)

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            out("MESSAGE", msg["from"].bare, msg["body"].replace("\n", " | "))

    def on_presence(self, p):
        if p["from"].bare == self.boundjid.bare:
            return
        kind = p["type"] if p["type"] not in ("available", "") else (p["show"] or "available")
        out("PRESENCE", p["from"].bare, kind, p["status"] or "-")

    def on_event(self, iq):
        payload = iq.xml[0]
        xref = payload.find("{%s}monitorCrossRefID" % payload.tag.split("}")[0].lstrip("{"))
        out("EVENT", local(payload.tag), xref.text if xref is not None else "-")
        iq.reply(clear=True).send()

    async def request(self, xml):
        el = ET.fromstring(xml)
        iq = self.make_iq_set(ito=self.a.gateway)
        iq.append(el)
        name = local(el.tag)
        try:
            resp = await iq.send(timeout=10)
            child = resp.xml[0] if len(resp.xml) else None
            value = "-"
            if child is not None:
                for tag in ("monitorCrossRefID", "callID"):
                    found = child.find(".//{*}" + tag)
                    if found is not None:
                        value = found.text
                        break
            out("RESULT", name, local(child.tag) if child is not None else "-", value)
        except IqError as e:
            err = e.iq.xml.find("{jabber:client}error")
            cond = next((local(c.tag) for c in err if c.tag.startswith("{%s}" % STANZAS) and local(c.tag) != "text"), "-")
            csta = err.find(".//{*}CSTAErrorCode")
            detail = "-" if csta is None or len(csta) == 0 else "%s/%s" % (local(csta[0].tag), csta[0].text)
            out("ERROR", name, err.get("type"), cond, detail)
        except IqTimeout:
            out("ERROR", name, "timeout", "-", "-")

    async def start(self, event):
        self.send_presence()
        self.send_presence(pto=self.a.gateway)  # directed presence: the gateway learns when we go
        for jid in self.a.subscribe:
            self.send_presence_subscription(pto=jid)
        out("READY", self.boundjid.full)
        for xml in self.a.csta:
            await self.request(xml)
        loop = asyncio.get_event_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = (await reader.readline()).decode().strip()
            if line == "" or line == "quit":
                self.disconnect()
                return
            if line.startswith("csta "):
                await self.request(line[5:])
            elif line.startswith("say "):
                _, to, text = line.split(" ", 2)
                self.send_message(mto=to, mbody=text, mtype="chat")
            elif line.startswith("subscribe "):
                self.send_presence_subscription(pto=line.split(" ", 1)[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jid", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--gateway", default="cti.localhost")
    ap.add_argument("--csta", action="append", default=[], help="a CSTA request element to send, in order")
    ap.add_argument("--subscribe", action="append", default=[], help="ask for this contact's presence at start")
    a = ap.parse_args()
    xmpp = Cti(a)
    xmpp.connect(address=("127.0.0.1", a.port), use_ssl=False, force_starttls=False, disable_starttls=True)
    xmpp.process(forever=False)


if __name__ == "__main__":
    main()
