// Signing in: WordPress gives the person logged in a single-use m.login.token (POST with the
// cookie and the REST nonce); the widget logs in with it on the device this browser already has.
import { createClient, IndexedDBStore, type MatrixClient, MemoryStore } from "matrix-js-sdk";
import { __ } from "./i18n";
import * as storage from "./storage";

export interface ChatSession {
  homeserver: string;
  user_id: string;
  login_token: string;
}

export type Refusal = "login" | "ended" | "pending" | "unavailable" | "unreachable";

export class SessionRefused extends Error {
  constructor(
    readonly kind: Refusal,
    message: string,
  ) {
    super(message);
  }
}

const REFUSALS: Record<string, Refusal> = {
  firm_chat_login: "login",
  rest_cookie_invalid_nonce: "login",
  firm_chat_ended: "ended",
  firm_chat_pending: "pending",
  firm_chat_unavailable: "unavailable",
  firm_chat_unreachable: "unreachable",
};

function message(kind: Refusal): string {
  switch (kind) {
    case "login":
      return __("You are no longer logged in to the portal. Log in again to use secure chat.");
    case "ended":
      return __("Your access to secure chat has ended.");
    case "pending":
      return __("Your secure chat account is being set up. Please try again in a minute.");
    case "unavailable":
      return __("Secure chat is not available for your account.");
    default:
      return __("Secure chat is unavailable right now. Please try again shortly.");
  }
}

export async function askSession(url: string, nonce: string): Promise<ChatSession> {
  let r: Response;
  try {
    r = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "X-WP-Nonce": nonce },
      signal: AbortSignal.timeout(20000),
    });
  } catch {
    throw new SessionRefused("unreachable", message("unreachable"));
  }
  const body = (await r.json().catch(() => ({}))) as Partial<ChatSession> & { code?: string };
  if (r.ok && body.login_token && body.user_id && body.homeserver) {
    return body as ChatSession;
  }
  const kind = REFUSALS[body.code ?? ""] ?? (r.status === 401 ? "login" : "unreachable");
  throw new SessionRefused(kind, message(kind));
}

export interface Login {
  userId: string;
  deviceId: string;
  accessToken: string;
  homeserver: string;
}

/** Logs in on this browser's device for the person (a new one the first time). */
export async function login(session: ChatSession): Promise<Login> {
  const known = storage.deviceFor(session.user_id);
  const anon = createClient({ baseUrl: session.homeserver });
  const res = await anon.loginRequest({
    type: "m.login.token",
    token: session.login_token,
    device_id: known,
    initial_device_display_name: __("Portal chat (this browser)"),
  });
  if (res.user_id !== session.user_id) throw new Error("signed in as someone else");
  if (known !== res.device_id) {
    // The server made a new device (first visit, or the old one was removed): the keys kept
    // for another device must not be used with it.
    await storage.forgetPerson(session.user_id);
    storage.setDevice(session.user_id, res.device_id);
  }
  return {
    userId: res.user_id,
    deviceId: res.device_id,
    accessToken: res.access_token,
    homeserver: session.homeserver,
  };
}

type Callbacks = NonNullable<Parameters<typeof createClient>[0]["cryptoCallbacks"]>;

/** The client, its sync state kept in IndexedDB (one database per person, deleted with the
 * crypto store), so a return visit syncs from where the last one stopped instead of starting
 * over. The store keeps events as /sync delivered them: messages stay `m.room.encrypted`
 * ciphertext (the SDK decrypts into a separate field it never writes back). No localStorage
 * for it: that would hold filter ids and, for unsent messages, their plaintext. */
export async function clientFor(login: Login, callbacks: Callbacks): Promise<MatrixClient> {
  let store: IndexedDBStore | MemoryStore = new IndexedDBStore({
    indexedDB: window.indexedDB,
    dbName: storage.syncStoreName(login.userId),
  });
  const client = createClient({
    baseUrl: login.homeserver,
    userId: login.userId,
    deviceId: login.deviceId,
    accessToken: login.accessToken,
    timelineSupport: true,
    store,
    cryptoCallbacks: callbacks,
  });
  try {
    await (store as IndexedDBStore).startup();
  } catch (e) {
    // IndexedDB refused (a private window, the disk full): in memory, one full sync per visit.
    console.warn("firm-chat: sync store unavailable", (e as Error)?.name);
    store = new MemoryStore();
    client.store = store;
  }
  return client;
}

/** Saves the sync state now (the SDK writes it at most every five minutes), so the next visit
 * starts from this one's last sync. */
export function saveSyncState(client: MatrixClient): void {
  void client.store.save(true).catch(() => undefined);
}
