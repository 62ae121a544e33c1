#!/usr/bin/python3
"""A contact's chat client on slixmpp (run with /usr/bin/python3) that shows XEP-0108 User Activity.

It advertises interest in http://jabber.org/protocol/activity (XEP-0115 caps with +notify, through the
xep_0163/xep_0108 plugins), approves subscription requests and subscribes back (slixmpp defaults), and
prints one flushed line per fact for the test to wait on:
  READY <full jid>
  PRESENCE <from> <type or show or "available"> <status or ->
  ACTIVITY <from bare jid> <general or "none"> <specific or -> <text or -> <the activity element as sent>
Reads lines from stdin: "quit" disconnects; "subscribe <jid>" asks for that contact's presence.
"""
import argparse, asyncio, sys
import xml.etree.ElementTree as ET
import slixmpp

ACTIVITY = "http://jabber.org/protocol/activity"


def out(*parts):
    print(*parts, flush=True)


def local(tag):
    return tag.split("}")[-1]


class Contact(slixmpp.ClientXMPP):
    def __init__(self, a):
        super().__init__(a.jid, a.password)
        self.a = a
        for plugin in ("xep_0030", "xep_0115", "xep_0163", "xep_0108", "xep_0199"):
            self.register_plugin(plugin)
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_auth", lambda *_: (out("AUTH FAILED"), self.disconnect()))
        self.add_event_handler("disconnected", lambda *_: out("DISCONNECTED"))
        self.add_event_handler("presence", self.on_presence)
        self.add_event_handler("user_activity_publish", self.on_activity)

    def on_presence(self, p):
        if p["from"].bare == self.boundjid.bare:
            return
        kind = p["type"] if p["type"] not in ("available", "") else (p["show"] or "available")
        out("PRESENCE", p["from"].bare, kind, p["status"] or "-")

    def on_activity(self, msg):
        activity = next(msg.xml.iter("{%s}activity" % ACTIVITY), None)
        if activity is None:
            return
        general, specific, text = "none", "-", "-"
        for child in activity:
            if local(child.tag) == "text":
                text = child.text or "-"
            else:
                general = local(child.tag)
                if len(child):
                    specific = local(child[0].tag)
        raw = ET.tostring(activity, encoding="unicode").replace("\n", "")
        out("ACTIVITY", msg["from"].bare, general, specific, text.replace(" ", "_"), raw)

    async def start(self, event):
        self.send_presence()
        for jid in self.a.subscribe:
            self.send_presence_subscription(pto=jid)
        out("READY", self.boundjid.full)
        loop = asyncio.get_event_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = (await reader.readline()).decode().strip()
            if line == "" or line == "quit":
                self.disconnect()
                return
            if line.startswith("subscribe "):
                self.send_presence_subscription(pto=line.split(" ", 1)[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jid", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--subscribe", action="append", default=[], help="ask for this contact's presence at start")
    a = ap.parse_args()
    xmpp = Contact(a)
    xmpp.connect(address=("127.0.0.1", a.port), use_ssl=False, force_starttls=False, disable_starttls=True)
    xmpp.process(forever=False)


if __name__ == "__main__":
    main()
