// What this browser keeps: the choice "own or shared computer", the chat device id per person
// (so a reload or a new visit is the same device) and, in IndexedDB, one person's device keys
// (the Rust crypto store) and sync state (matrix-js-sdk's IndexedDBStore: the last sync token
// and the rooms as the homeserver sent them, messages still encrypted), so a return visit asks
// the homeserver only for what is new. Nothing else: no access token is kept.
const KEY = "firm-chat";
const DB_PREFIX = "firm-chat:";
// matrix-js-sdk prefixes the name its IndexedDBStore is given with this.
const SDK_DB_PREFIX = "matrix-js-sdk:";

export type Computer = "own" | "shared";

interface Saved {
  computer?: Computer;
  devices: Record<string, string>;
  /** When this browser last made each person's dehydrated device (ms since the epoch). */
  dehydrated?: Record<string, number>;
}

function load(): Saved {
  try {
    const raw = localStorage.getItem(KEY);
    const data = raw ? (JSON.parse(raw) as Partial<Saved>) : {};
    return { computer: data.computer, devices: data.devices ?? {}, dehydrated: data.dehydrated };
  } catch {
    return { devices: {} };
  }
}

function save(data: Saved): void {
  localStorage.setItem(KEY, JSON.stringify(data));
}

export function computer(): Computer | undefined {
  return load().computer;
}

export function setComputer(value: Computer): void {
  save({ ...load(), computer: value });
  // WordPress reads this at logout to wipe a shared computer's chat store (Clear-Site-Data).
  document.cookie = `firm_chat_shared=${value === "shared" ? "1" : "0"}; path=/; SameSite=Strict`;
}

export function deviceFor(userId: string): string | undefined {
  return load().devices[userId];
}

export function setDevice(userId: string, deviceId: string): void {
  const data = load();
  data.devices[userId] = deviceId;
  save(data);
}

export function dehydratedAt(userId: string): number | undefined {
  return load().dehydrated?.[userId];
}

export function setDehydrated(userId: string, when: number): void {
  const data = load();
  data.dehydrated = { ...data.dehydrated, [userId]: when };
  save(data);
}

export function cryptoPrefix(userId: string): string {
  return DB_PREFIX + userId;
}

/** The sync store's name for matrix-js-sdk (its database: `matrix-js-sdk:` + this). */
export function syncStoreName(userId: string): string {
  return `${cryptoPrefix(userId)}::sync`;
}

/** Whether a database is one of the chat's: the crypto store's two, the sync store. */
function isChatDatabase(name: string, prefix = DB_PREFIX): boolean {
  return name.startsWith(prefix) || name.startsWith(SDK_DB_PREFIX + prefix);
}

/** Deletes a database; one still open (the crypto store closing) is waited for, 10 s at most. */
async function deleteDatabase(name: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const req = indexedDB.deleteDatabase(name);
    const timer = setTimeout(resolve, 10000);
    req.onsuccess = req.onerror = () => {
      clearTimeout(timer);
      resolve();
    };
  });
}

/** Deletes one person's key and sync stores (a device the server no longer knows, or a
 * sign-out). `::` follows the user id in every name, so @a:x does not match @a:x.y's stores. */
export async function forgetPerson(userId: string): Promise<void> {
  const data = load();
  delete data.devices[userId];
  delete data.dehydrated?.[userId];
  save(data);
  const prefix = `${cryptoPrefix(userId)}::`;
  for (const db of await indexedDB.databases()) {
    if (db.name && isChatDatabase(db.name, prefix)) await deleteDatabase(db.name);
  }
}

/** Leaves nothing of the chat in this browser: every chat database and the saved choices. */
export async function wipe(): Promise<void> {
  for (const db of await indexedDB.databases()) {
    if (db.name && isChatDatabase(db.name)) await deleteDatabase(db.name);
  }
  for (const key of Object.keys(localStorage)) {
    if (key === KEY || key.startsWith("mxjssdk_")) localStorage.removeItem(key);
  }
  document.cookie = "firm_chat_shared=0; path=/; max-age=0; SameSite=Strict";
}
