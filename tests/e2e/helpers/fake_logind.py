"""A stand-in for systemd-logind on a test's private bus (there is no logind here).

GetSessionByPID answers session "c7" for any pid, the session's Id property is "c7", and
TerminateSession appends "terminate ID" to the file named by argv[2]. Prints "ready" once it
owns org.freedesktop.login1 on the bus at argv[1]."""
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

PATH = "/org/freedesktop/login1"
SESSION = PATH + "/session/c7"

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
name = dbus.service.BusName("org.freedesktop.login1", bus)
out = sys.argv[2]


class Manager(dbus.service.Object):
    @dbus.service.method("org.freedesktop.login1.Manager", in_signature="u", out_signature="o")
    def GetSessionByPID(self, pid):
        return SESSION

    @dbus.service.method("org.freedesktop.login1.Manager", in_signature="s")
    def TerminateSession(self, sid):
        with open(out, "a") as f:
            f.write(f"terminate {sid}\n")


class Session(dbus.service.Object):
    @dbus.service.method("org.freedesktop.DBus.Properties", in_signature="ss", out_signature="v")
    def Get(self, interface, prop):
        if prop != "Id":
            raise dbus.exceptions.DBusException("no such property", name="org.freedesktop.DBus.Error.UnknownProperty")
        return dbus.String("c7", variant_level=1)


Manager(bus, PATH)
Session(bus, SESSION)
print("ready", flush=True)
GLib.MainLoop().run()
