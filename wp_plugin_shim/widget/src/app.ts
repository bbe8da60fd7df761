// The chat in one portal mount point: who holds the session (one tab), signing in, keys, and the
// rooms and timeline views. Everything the homeserver or other clients send is shown as text.
import {
  ClientEvent,
  Filter,
  HttpApiEvent,
  KnownMembership,
  type MatrixClient,
  type MatrixError,
  MatrixEventEvent,
  RoomEvent,
  RoomMemberEvent,
  RoomStateEvent,
  SyncState,
} from "matrix-js-sdk";
import { initAsync } from "@matrix-org/matrix-sdk-crypto-wasm";
import { acceptInvite } from "./contacts";
import { CallView } from "./callview";
import { clear, h, modal, uid } from "./dom";
import { __, sprintf } from "./i18n";
import { KeyKeeper, type KeyUi } from "./keys";
import { RoomsView } from "./rooms";
import { askSession, clientFor, login, saveSyncState, SessionRefused } from "./session";
import * as storage from "./storage";

declare const __WASM_FILE__: string;

export interface Matter {
  id: number;
  number: string;
  title: string;
  status?: string;
  /** The role table lets this person export the matter's transcript (the bridge's answer). */
  export?: boolean;
}

const LOCK = "firm-chat";
import { LOGOUT_SIGNAL } from "./signal";

export class ChatApp implements KeyUi {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly body: HTMLElement;
  private readonly matters: Matter[];
  private client: MatrixClient | null = null;
  private release: (() => void) | null = null;
  private keys: KeyKeeper | null = null;
  private rooms: RoomsView | null = null;
  calls: CallView | null = null;
  private ended = false;
  private onHidden: (() => void) | null = null;

  constructor(private readonly mount: HTMLElement) {
    this.matters = parseMatters(mount.dataset.matters);
    this.status = h("p", { class: "fc-status", role: "status", "aria-live": "polite" });
    this.body = h("div", { class: "fc-body" });
    this.root = h(
      "section",
      { class: "fc", "aria-label": __("Secure chat") },
      h("h2", { class: "fc-title" }, __("Secure chat")),
      this.status,
      this.body,
    );
    clear(mount, this.root);
  }

  /** The plugin's REST base (ends with a slash) and the nonce its routes ask for. */
  get restUrl(): string {
    return this.mount.dataset.restUrl ?? "";
  }

  get restNonce(): string {
    return this.mount.dataset.restNonce ?? "";
  }

  setStatus(text: string): void {
    this.status.textContent = text;
  }

  /** Takes the session lock, or says another tab has it and offers to take over. */
  async start(steal = false): Promise<void> {
    this.ended = false;
    if (!("locks" in navigator)) {
      await this.run();
      return;
    }
    let granted = false;
    const held = navigator.locks.request(
      LOCK,
      steal ? { steal: true } : { ifAvailable: true },
      async (lock) => {
        if (!lock) return;
        granted = true;
        await new Promise<void>((resolve) => {
          this.release = resolve;
          void this.run();
        });
      },
    );
    held.then(
      () => {
        if (!granted) this.otherTab();
      },
      (e: Error) => {
        // Another tab took the chat over (steal): this one stops at once.
        if (e.name === "AbortError") void this.movedAway();
      },
    );
  }

  private otherTab(): void {
    this.setStatus(__("Secure chat is open in another tab or window."));
    clear(
      this.body,
      h("p", {}, __("Only one tab can hold the chat at a time, so that your messages stay in order.")),
      h(
        "button",
        { type: "button", class: "fc-button", onclick: () => void this.start(true) },
        __("Use chat in this tab instead"),
      ),
    );
  }

  private async movedAway(): Promise<void> {
    await this.stopClient();
    this.setStatus(__("Secure chat was opened in another tab."));
    clear(
      this.body,
      h(
        "button",
        { type: "button", class: "fc-button", onclick: () => void this.start(true) },
        __("Use chat in this tab instead"),
      ),
    );
  }

  private async run(): Promise<void> {
    try {
      if (!storage.computer()) await this.askComputer();
      this.setStatus(__("Signing in to secure chat…"));
      // The crypto wasm compiles while WordPress and the homeserver answer (it needs neither).
      const wasm = initAsync(new URL(`./${__WASM_FILE__}`, import.meta.url));
      wasm.catch(() => undefined); // its failure is thrown where it is awaited, below
      const session = await askSession(
        this.mount.dataset.sessionUrl ?? "",
        this.mount.dataset.restNonce ?? "",
      );
      const signedIn = await login(session);
      this.keys = new KeyKeeper(this);
      const client = await clientFor(signedIn, {
        getSecretStorageKey: this.keys.getSecretStorageKey,
        cacheSecretStorageKey: this.keys.cacheSecretStorageKey,
      });
      this.client = client;
      this.watch(client);
      await wasm;
      await client.initRustCrypto({ cryptoDatabasePrefix: storage.cryptoPrefix(signedIn.userId) });
      // Synapse keeps each /sync answer for two minutes, keyed by the request (the SDK's cache
      // buster is not part of the key): a reload on this device within that time would get the
      // last page's answers again, one stale step at a time. Slightly different parameters per
      // page load keep this page's requests its own.
      const jitter = Math.floor(Math.random() * 1000);
      // No presence either way: the widget shows none, and each change would wake every open
      // page's sync (idle pages should cost a request per poll, nothing more).
      const filter = new Filter(signedIn.userId);
      filter.setDefinition({
        presence: { not_types: ["*"] },
        room: {
          timeline: { unread_thread_notifications: true },
          state: { lazy_load_members: true },
          ephemeral: { types: ["m.receipt", "m.typing"] },
        },
      });
      await client.startClient({
        filter,
        disablePresence: true,
        lazyLoadMembers: true,
        initialSyncLimit: 20 + (jitter % 5),
        pollTimeout: 30000 + jitter,
      });
      await this.firstSync(client);
      this.setStatus("");
      this.calls = new CallView({ setStatus: (t) => this.setStatus(t), label: (r) => this.rooms?.label(r) ?? r.name }, client);
      this.root.insertBefore(this.calls.el, this.body);
      this.rooms = new RoomsView(this, client, this.matters);
      clear(this.body, this.rooms.el, this.footer());
      this.root.dataset.state = "ready";
      window.dispatchEvent(new CustomEvent("firm-chat:ready", { detail: { device: signedIn.deviceId } }));
      await this.keys.start(client);
      this.rooms.refresh();
    } catch (e) {
      await this.fail(e);
    }
  }

  private async firstSync(client: MatrixClient): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onSync = (state: SyncState, _prev: SyncState | null, data?: { error?: Error }) => {
        if (state === SyncState.Prepared || state === SyncState.Syncing) {
          client.off(ClientEvent.Sync, onSync);
          resolve();
        } else if (state === SyncState.Error && isAccessError(data?.error)) {
          client.off(ClientEvent.Sync, onSync);
          reject(data?.error);
        }
      };
      client.on(ClientEvent.Sync, onSync);
    });
  }

  private watch(client: MatrixClient): void {
    client.on(HttpApiEvent.SessionLoggedOut, () => void this.accessLost());
    // Leaving the page (or hiding it, the last sure moment on phones): the sync state is saved
    // so the next visit continues from here.
    this.onHidden = () => {
      if (document.visibilityState === "hidden" && this.client === client) saveSyncState(client);
    };
    document.addEventListener("visibilitychange", this.onHidden);
    client.on(ClientEvent.Sync, (state, _prev, data) => {
      if (state === SyncState.Error && isAccessError(data?.error)) void this.accessLost();
    });
    client.on(RoomEvent.Timeline, () => this.rooms?.refresh());
    client.on(RoomEvent.Receipt, () => this.rooms?.refresh());
    client.on(RoomEvent.Redaction, () => this.rooms?.refresh());
    client.on(RoomEvent.LocalEchoUpdated, () => this.rooms?.refresh());
    client.on(RoomEvent.MyMembership, (room, membership) => {
      if (membership === KnownMembership.Invite) void acceptInvite(client, room);
      this.rooms?.refresh();
    });
    client.on(RoomMemberEvent.Typing, () => this.rooms?.refresh());
    client.on(ClientEvent.Room, () => this.rooms?.refresh());
    client.on(RoomStateEvent.Events, () => this.rooms?.refresh());
    // Every event the client decrypts, from /sync or from scrolling back, re-renders.
    client.on(MatrixEventEvent.Decrypted, () => this.rooms?.refresh());
    // Logging out of WordPress in another tab (the login page's signal) ends the chat here.
    window.addEventListener("storage", (e) => {
      if (e.key === LOGOUT_SIGNAL && e.newValue) void this.portalLogout();
    });
  }

  /** The token stopped working or the account was suspended: say why, stop syncing. */
  private async accessLost(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.stopClient();
    this.root.dataset.state = "ended";
    let text = __("You were signed out of secure chat.");
    try {
      // Asking again tells a departure (403) from a portal logout (401) from a removed device.
      await askSession(this.mount.dataset.sessionUrl ?? "", this.mount.dataset.restNonce ?? "");
    } catch (e) {
      if (e instanceof SessionRefused) text = e.message;
    }
    this.setStatus(text);
    const again =
      text === __("You were signed out of secure chat.")
        ? h("button", { type: "button", class: "fc-button", onclick: () => location.reload() }, __("Sign in again"))
        : null;
    clear(this.body, h("p", { class: "fc-ended", role: "alert" }, text), again);
  }

  private async portalLogout(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (storage.computer() === "shared") {
      await this.signOut(false);
    } else {
      await this.stopClient();
    }
    const text = __("You logged out of the portal, so secure chat has stopped.");
    this.root.dataset.state = "ended";
    this.setStatus(text);
    clear(this.body, h("p", { class: "fc-ended", role: "alert" }, text));
  }

  async stopClient(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.rooms?.stop();
    this.rooms = null;
    this.calls?.stop();
    this.calls = null;
    if (this.onHidden) document.removeEventListener("visibilitychange", this.onHidden);
    this.onHidden = null;
    if (client) {
      client.stopClient();
      client.removeAllListeners();
      // Closes the sync store's database (a sign-out deletes it next; a tab taking over opens it).
      await client.store.destroy().catch(() => undefined);
    }
    this.release?.();
    this.release = null;
  }

  /** Deletes this browser's chat device on the server and everything the chat kept here. */
  async signOut(report = true): Promise<void> {
    const client = this.client;
    this.setStatus(__("Signing out of chat on this computer…"));
    if (client) {
      try {
        await client.logout(true);
      } catch {
        // The device may be gone already (access ended); the local wipe still happens.
      }
      try {
        await client.clearStores({ cryptoDatabasePrefix: storage.cryptoPrefix(client.getSafeUserId()) });
      } catch {
        /* wiped below */
      }
    }
    await this.stopClient();
    await storage.wipe();
    this.ended = true;
    this.root.dataset.state = "signed-out";
    if (report) {
      const text = __("You signed out of chat on this computer. Nothing from the chat is left in this browser.");
      this.setStatus(text);
      clear(this.body, h("p", { role: "alert" }, text));
    }
  }

  private footer(): HTMLElement {
    const shared = storage.computer() === "shared";
    return h(
      "div",
      { class: "fc-footer" },
      shared ? h("p", {}, __("This is a shared computer: sign out of chat when you are done.")) : null,
      h(
        "button",
        { type: "button", class: "fc-button fc-signout", onclick: () => void this.signOut() },
        __("Sign out of chat on this computer"),
      ),
    );
  }

  private askComputer(): Promise<void> {
    return new Promise((resolve) => {
      const heading = uid("fc-q");
      const choose = (value: storage.Computer) => {
        storage.setComputer(value);
        clear(this.body);
        resolve();
      };
      this.setStatus("");
      clear(
        this.body,
        h(
          "div",
          { class: "fc-card", role: "group", "aria-labelledby": heading },
          h("h3", { id: heading }, __("Is this your own computer?")),
          h(
            "p",
            {},
            __(
              "On your own computer, chat remembers this browser so you are not asked again. On a shared or public computer, chat leaves nothing behind when you sign out or log out of the portal.",
            ),
          ),
          h("button", { type: "button", class: "fc-button", onclick: () => choose("own") }, __("This is my own computer")),
          h("button", { type: "button", class: "fc-button", onclick: () => choose("shared") }, __("This is a shared computer")),
        ),
      );
      (this.body.querySelector("button") as HTMLButtonElement | null)?.focus();
    });
  }

  // --- KeyUi --------------------------------------------------------------------------------

  showRecoveryKey(encoded: string): Promise<void> {
    return new Promise((resolve) => {
      const heading = uid("fc-rk");
      const keyText = h("p", { class: "fc-recovery-key", "data-recovery-key": "" }, encoded);
      const done = h("button", { type: "button", class: "fc-button", disabled: true }, __("Continue"));
      const saved = h("input", { type: "checkbox", id: uid("fc-saved") });
      saved.addEventListener("change", () => {
        done.disabled = !saved.checked;
      });
      const dialog = h(
        "div",
        { class: "fc-dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": heading },
        h("h3", { id: heading }, __("Your recovery key")),
        h(
          "p",
          {},
          __(
            "Your messages are locked with keys that only your devices hold. If you use another browser or this one is cleared, this recovery key unlocks your earlier messages. Keep it somewhere safe, like a password manager or a printed copy. It is shown only this once, and nobody at the firm can see it or give it back to you.",
          ),
        ),
        keyText,
        h(
          "div",
          { class: "fc-actions" },
          h("button", { type: "button", class: "fc-button", onclick: () => void navigator.clipboard?.writeText(encoded) }, __("Copy")),
          h("button", { type: "button", class: "fc-button", onclick: () => download(encoded) }, __("Download")),
          h("button", { type: "button", class: "fc-button", onclick: () => window.print() }, __("Print")),
        ),
        h("p", {}, saved, " ", h("label", { for: saved.id }, __("I have saved my recovery key"))),
        done,
      );
      // Escape does not close it: the key is shown only once, so it goes only once saved.
      const close = modal(dialog, { fallback: () => this.root.querySelector<HTMLElement>(".fc-text") ?? this.root.querySelector<HTMLElement>("[data-room-id]") });
      done.addEventListener("click", () => {
        close();
        resolve();
      });
      this.root.appendChild(dialog);
      (dialog.querySelector("button") as HTMLButtonElement).focus();
    });
  }

  askRecoveryKey(error?: string): Promise<string | null> {
    return new Promise((resolve) => {
      this.root.querySelector(".fc-unlock")?.remove();
      const heading = uid("fc-unlock");
      const input = h("input", {
        type: "text",
        id: uid("fc-key"),
        class: "fc-input",
        autocomplete: "off",
        spellcheck: "false",
        "aria-describedby": error ? `${heading}-err` : undefined,
        "aria-invalid": error ? "true" : undefined,
      });
      const form = h(
        "form",
        { class: "fc-unlock fc-card", "aria-labelledby": heading },
        h("h3", { id: heading }, __("Unlock your earlier messages")),
        h(
          "p",
          {},
          __("This browser is new to your chat. Enter the recovery key you saved when you first used secure chat to read your earlier messages."),
        ),
        error ? h("p", { class: "fc-error", id: `${heading}-err`, role: "alert" }, error) : null,
        h("label", { for: input.id }, __("Recovery key")),
        input,
        h(
          "div",
          { class: "fc-actions" },
          h("button", { type: "submit", class: "fc-button" }, __("Unlock")),
          h(
            "button",
            {
              type: "button",
              class: "fc-button fc-secondary",
              onclick: () => {
                form.remove();
                resolve(null);
              },
            },
            __("Not now"),
          ),
        ),
      );
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        form.remove();
        this.setStatus(__("Unlocking your messages…"));
        resolve(input.value);
      });
      this.body.prepend(form);
      input.focus();
    });
  }

  restored(count: number): void {
    this.setStatus(sprintf(__("Your earlier messages are unlocked (%d keys restored)."), count));
    this.rooms?.refresh();
  }

  /** The fix offered on a message that could not be decrypted. */
  async enterRecoveryKey(): Promise<void> {
    if (!this.keys) return;
    await this.keys.askUntilUnlocked();
  }

  private async fail(e: unknown): Promise<void> {
    if (e instanceof SessionRefused) {
      this.root.dataset.state = "refused";
      this.setStatus(e.message);
      clear(this.body, h("p", { class: "fc-ended", role: "alert" }, e.message));
      return;
    }
    if (isAccessError(e as Error)) {
      await this.accessLost();
      return;
    }
    console.error("firm-chat: could not start", (e as Error)?.name, (e as Error)?.message);
    this.root.dataset.state = "error";
    const text = __("Secure chat could not start. Please reload the page to try again.");
    this.setStatus(text);
    clear(
      this.body,
      h("p", { role: "alert" }, text),
      h("button", { type: "button", class: "fc-button", onclick: () => location.reload() }, __("Reload")),
    );
  }
}

function isAccessError(e?: Error | MatrixError | null): boolean {
  const status = (e as MatrixError | undefined)?.httpStatus;
  return status === 401 || status === 403;
}

function parseMatters(raw?: string): Matter[] {
  try {
    const data = JSON.parse(raw ?? "[]") as Matter[];
    return Array.isArray(data) ? data : [];
  } catch {
    return [];
  }
}

function download(text: string): void {
  const url = URL.createObjectURL(new Blob([`${text}\n`], { type: "text/plain" }));
  const a = h("a", { href: url, download: "chat-recovery-key.txt" });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
