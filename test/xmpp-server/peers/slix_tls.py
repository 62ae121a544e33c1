#!/usr/bin/python3
"""slixmpp interop client for the text server tests (run with /usr/bin/python3).

Logs in with STARTTLS (self-signed certificate accepted), prints one line per step so the Node test
can follow: the bound JID and mechanism, roster, subscription, presence, message, ping, disco, version.
Exits 0 when every requested step worked.
"""
import argparse, asyncio, ssl, sys
import slixmpp

class Client(slixmpp.ClientXMPP):
    def __init__(self, a):
        super().__init__(a.jid, a.password)
        self.a = a
        self.ok = True
        for p in ("xep_0030", "xep_0199", "xep_0092"):
            self.register_plugin(p)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("presence_subscribe", self.on_subscribe)
        self.add_event_handler("presence_available", self.on_available)
        self.add_event_handler("failed_auth", lambda *_: self.fail("AUTH FAILED"))
        self.got_message = asyncio.Event()
        self.got_presence = asyncio.Event()

    def fail(self, why):
        print("FAIL", why, flush=True)
        self.ok = False
        self.disconnect()

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            print("MESSAGE from=%s body=%s" % (msg["from"], msg["body"]), flush=True)
            self.got_message.set()

    def on_subscribe(self, pres):
        print("SUBSCRIBE from=%s" % pres["from"], flush=True)
        if self.a.approve:
            self.send_presence(pto=pres["from"].bare, ptype="subscribed")

    def on_available(self, pres):
        print("AVAILABLE from=%s" % pres["from"], flush=True)
        if self.a.subscribe and pres["from"].bare == self.a.subscribe:
            self.got_presence.set()

    async def start(self, event):
        try:
            mech = getattr(self.plugin["feature_mechanisms"], "mech", None)
            print("SESSION jid=%s mech=%s" % (self.boundjid.full, getattr(mech, "name", "?")), flush=True)
            await self.get_roster(timeout=5)
            print("ROSTER %s" % sorted(str(j) for j in self.client_roster.keys()), flush=True)
            self.send_presence()
            rtt = await self.plugin["xep_0199"].ping(jid=self.boundjid.domain, timeout=5)
            print("PING ok", flush=True)
            info = await self.plugin["xep_0030"].get_info(jid=self.boundjid.domain, timeout=5)
            print("DISCO features=%d" % len(info["disco_info"]["features"]), flush=True)
            ver = await self.plugin["xep_0092"].get_version(self.boundjid.domain, timeout=5)
            print("VERSION %s" % ver["software_version"]["name"], flush=True)
            if self.a.subscribe:
                self.send_presence(pto=self.a.subscribe, ptype="subscribe")
                await asyncio.wait_for(self.got_presence.wait(), 10)
                item = self.client_roster[self.a.subscribe]
                print("SUBSCRIBED %s subscription=%s" % (self.a.subscribe, item["subscription"]), flush=True)
            if self.a.to:
                self.send_message(mto=self.a.to, mbody=self.a.msg, mtype="chat")
                print("SENT", flush=True)
            if self.a.expect_message:
                await asyncio.wait_for(self.got_message.wait(), 10)
            await asyncio.sleep(self.a.stay)
        except Exception as e:
            self.fail("%s: %s" % (type(e).__name__, e))
            return
        print("DONE", flush=True)
        self.disconnect()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jid", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--subscribe")
    ap.add_argument("--approve", action="store_true")
    ap.add_argument("--to")
    ap.add_argument("--msg", default="hello")
    ap.add_argument("--expect-message", action="store_true")
    ap.add_argument("--stay", type=float, default=0)
    a = ap.parse_args()
    c = Client(a)
    c.connect(address=("127.0.0.1", a.port), use_ssl=False, force_starttls=True, disable_starttls=False)
    c.process(forever=False)
    sys.exit(0 if c.ok else 1)

if __name__ == "__main__":
    main()
