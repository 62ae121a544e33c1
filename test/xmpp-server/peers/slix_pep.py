#!/usr/bin/python3
"""slixmpp PEP peer for the text server tests (run with /usr/bin/python3).

Client mode (default): logs in with the XEP-0115, XEP-0163, XEP-0108 (user activity) and XEP-0118
(user tune) plugins, so its caps say activity+notify and tune+notify; prints one line per PEP event:
  ACTIVITY from=JID general=G specific=S text=T delayed=yes|no
  TUNE from=JID artist=A title=T
It can publish a tune (--publish-tune "artist|title") and exits after --expect events, or --stay seconds.

Component mode (--component): a XEP-0114 component with the XEP-0356 plugin; prints the permissions the
server advertised, reads --roster-of's roster, and sends --message-as's chat message to --message-to.
"""
import argparse, asyncio, ssl, sys
import slixmpp


def out(*parts):
    print(*parts, flush=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, a):
        super().__init__(a.jid, a.password)
        self.a = a
        self.events = 0
        self.done = asyncio.Event()
        for p in ("xep_0030", "xep_0115", "xep_0163", "xep_0108", "xep_0118", "xep_0203"):
            self.register_plugin(p)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("user_activity_publish", self.on_activity)
        self.add_event_handler("user_tune_publish", self.on_tune)
        self.add_event_handler("failed_auth", lambda *_: self.fail("AUTH FAILED"))

    def fail(self, why):
        out("FAIL", why)
        self.disconnect()

    def counted(self):
        self.events += 1
        if self.a.expect and self.events >= self.a.expect:
            self.done.set()

    def on_activity(self, msg):
        activity = msg["pubsub_event"]["items"]["item"]["activity"]
        general, specific = activity["value"]
        delayed = "yes" if msg.xml.find("{urn:xmpp:delay}delay") is not None else "no"
        out("ACTIVITY from=%s general=%s specific=%s text=%s delayed=%s"
            % (msg["from"], general, specific, activity["text"], delayed))
        self.counted()

    def on_tune(self, msg):
        tune = msg["pubsub_event"]["items"]["item"]["tune"]
        out("TUNE from=%s artist=%s title=%s" % (msg["from"], tune["artist"], tune["title"]))
        self.counted()

    async def start(self, event):
        try:
            await self.get_roster(timeout=5)
            self.send_presence()
            out("READY jid=%s" % self.boundjid.full)
            if self.a.publish_tune:
                artist, title = self.a.publish_tune.split("|", 1)
                await self.plugin["xep_0118"].publish_tune(artist=artist, title=title, timeout=5)
                out("PUBLISHED tune")
            if self.a.expect:
                await asyncio.wait_for(self.done.wait(), self.a.timeout)
            else:
                await asyncio.sleep(self.a.stay)
        except Exception as e:
            self.fail("%s: %s" % (type(e).__name__, e))
            return
        out("DONE")
        self.disconnect()


class Component(slixmpp.ComponentXMPP):
    def __init__(self, a):
        # server_host is where privileged messages go (the server's domain); the socket goes to 127.0.0.1.
        super().__init__(a.jid, a.password, a.domain, a.port)
        self.a = a
        self.register_plugin("xep_0356")
        self.add_event_handler("privileges_advertised", self.on_privileges)
        self.add_event_handler("session_start", lambda *_: out("CONNECTED"))

    def on_privileges(self, *_):
        asyncio.ensure_future(self.run_checks())

    async def run_checks(self):
        try:
            p = self.plugin["xep_0356"].granted_privileges
            out("PRIVILEGES roster=%s message=%s presence=%s" % (p["roster"], p["message"], p["presence"]))
            if self.a.roster_of:
                result = await self.plugin["xep_0356"].get_roster(self.a.roster_of, timeout=5)
                items = sorted("%s:%s" % (jid, item["subscription"]) for jid, item in result["roster"]["items"].items())
                out("ROSTER of=%s items=%s" % (self.a.roster_of, ",".join(items)))
            if self.a.message_as:
                msg = self.make_message(mto=self.a.message_to, mbody="hello from the privileged component",
                                        mtype="chat", mfrom=self.a.message_as)
                self.plugin["xep_0356"].send_privileged_message(msg)
                out("SENT message")
        except Exception as e:
            out("FAIL %s: %s" % (type(e).__name__, e))
        out("DONE")
        await asyncio.sleep(0.5)
        self.disconnect()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jid", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--component", action="store_true")
    ap.add_argument("--domain", default="localhost")
    ap.add_argument("--publish-tune")
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--stay", type=float, default=0)
    ap.add_argument("--timeout", type=float, default=15)
    ap.add_argument("--roster-of")
    ap.add_argument("--message-as")
    ap.add_argument("--message-to")
    a = ap.parse_args()
    if a.component:
        xmpp = Component(a)
        xmpp.connect(host="127.0.0.1", port=a.port)
    else:
        xmpp = Client(a)
        xmpp.connect(("127.0.0.1", a.port))
    xmpp.loop.run_until_complete(xmpp.disconnected)


if __name__ == "__main__":
    main()
