"""A PAM application for the e2e tests: pam_start SERVICE USER, acct_mgmt, open_session,
then either close at once ("close") or hold the session open for 30 s ("hold") so that the
daemon can end it. Prints "open RC", and "HUP"/"TERM" when signalled."""
import ctypes, ctypes.util, sys, time, signal
signal.signal(signal.SIGHUP, lambda *a: (print("HUP", flush=True), sys.exit(3)))
signal.signal(signal.SIGTERM, lambda *a: (print("TERM", flush=True), sys.exit(4)))
pam = ctypes.CDLL(ctypes.util.find_library("pam"))
class Conv(ctypes.Structure):
    _fields_ = [("conv", ctypes.c_void_p), ("appdata", ctypes.c_void_p)]
h = ctypes.c_void_p()
conv = Conv(None, None)
rc = pam.pam_start(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(conv), ctypes.byref(h))
rc = rc or pam.pam_acct_mgmt(h, 0)
rc = rc or pam.pam_open_session(h, 0)
print("open", rc, flush=True)
if rc: sys.exit(1)
if sys.argv[3] == "close":
    print("close", pam.pam_close_session(h, 0), flush=True)
    pam.pam_end(h, 0)
    sys.exit(0)
time.sleep(30)
print("still running", flush=True)
