"""Listen to org.elevate.Elevated1's signals the way a client must: call Subscribe, then print
every signal this connection receives, one line each ("LeaseActive 12 alice quick-bus ...").

argv[1]: the bus address. Prints "subscribed" (or "refused: ERROR") first. Also matches on
the interface with eavesdropping off, like `gdbus monitor`, so a broadcast would show here too."""
import sys

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])


def show(*args, member=None):
    print(member, *[str(a) if not isinstance(a, dbus.Array) else "[" + ",".join(map(str, a)) + "]" for a in args], flush=True)


bus.add_signal_receiver(show, dbus_interface="org.elevate.Elevated1", member_keyword="member")
try:
    bus.call_blocking("org.elevate.Elevated1", "/org/elevate/Elevated1", "org.elevate.Elevated1",
                      "Subscribe", "", [])
    print("subscribed", flush=True)
except dbus.DBusException as e:
    print(f"refused: {e.get_dbus_name()}", flush=True)
GLib.MainLoop().run()
