/** The localStorage key the logout screen sets to reach open chat tabs (a storage event). */
export const LOGOUT_SIGNAL = "firm-chat-logout";
