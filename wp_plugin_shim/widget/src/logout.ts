// Loaded on WordPress's "you are now logged out" screen: tells an open chat tab that the portal
// session ended (it stops, and on a shared computer signs out and wipes itself).
import { LOGOUT_SIGNAL } from "./signal";

try {
  localStorage.setItem(LOGOUT_SIGNAL, String(Date.now()));
  localStorage.removeItem(LOGOUT_SIGNAL);
} catch {
  // Storage disabled: nothing was kept either.
}
