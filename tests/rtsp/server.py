#!/usr/bin/python3
"""A real RTSP server for the tests: GStreamer's rtsp-server (Debian: gir1.2-gst-rtsp-server-1.0,
python3-gi, gstreamer1.0-plugins-good/-bad), serving an MP4 clip's H.264 track in a loop, paced in
real time, at rtsp://127.0.0.1:PORT/cam.

    server.py --port PORT --clip walker.mp4 [--user U --password P] [--codec h264|h265]

Prints "ready PORT" once listening. Stops on SIGTERM/SIGINT. `--codec h265` serves an H.265 test
pattern instead (a camera with a codec cascade refuses). SIGUSR1 stalls the stream (the sessions
stay open, no video is sent: a wedged camera); SIGUSR2 resumes it.
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def launch(clip: str, codec: str) -> str:
    if codec == "h265":
        return ("( videotestsrc ! video/x-raw,width=320,height=240,framerate=10/1 "
                "! x265enc tune=zerolatency ! h265parse ! rtph265pay name=pay0 pt=96 )")
    # The clip's own H.264, re-timestamped and paced in real time; loops via the media factory's
    # shared=false + an EOS-restarting bin is complex, so the clip is concatenated by multifilesrc.
    return (f"( multifilesrc location={clip} loop=true ! qtdemux ! h264parse config-interval=-1 "
            "! valve name=gate ! rtph264pay name=pay0 pt=96 config-interval=-1 )")


class Gates:
    """The valves of every media served: closed while the server is stalled."""

    def __init__(self) -> None:
        self.valves = []
        self.stalled = False

    def media_configured(self, _factory, media) -> None:
        valve = media.get_element().get_by_name("gate")
        if valve is not None:
            valve.set_property("drop", self.stalled)
            self.valves.append(valve)

    def set(self, stalled: bool) -> bool:
        self.stalled = stalled
        for v in self.valves:
            v.set_property("drop", stalled)
        print("stalled" if stalled else "resumed", file=sys.stderr, flush=True)
        return True


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--codec", default="h264", choices=["h264", "h265"])
    a = ap.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch(a.clip, a.codec))
    factory.set_shared(True)
    gates = Gates()
    factory.connect("media-configure", gates.media_configured)
    if a.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password or ""), token)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_role_from_structure(Gst.Structure.new_from_string(
            "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"))
        factory.set_permissions(perms)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{a.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, lambda: gates.set(True))
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR2, lambda: gates.set(False))
    print(f"ready {a.port}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
