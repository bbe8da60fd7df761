// Keys that outlive this browser: cross-signing, secret storage guarded by a recovery key shown
// once, server-side key backup, and a dehydrated device (MSC3814) that receives room keys while
// the person has no browser open, so a wiped browser loses nothing sent before or meanwhile.
import type { MatrixClient } from "matrix-js-sdk";
import { decodeRecoveryKey } from "matrix-js-sdk/lib/crypto-api";
import { __ } from "./i18n";
import * as storage from "./storage";

// matrix-js-sdk makes a new dehydrated device this often while a page stays open; a new visit
// within that time keeps the one it has (each new one makes every sender fetch its keys again).
const DEHYDRATION_INTERVAL_MS = 7 * 24 * 3600 * 1000;

export class WrongKey extends Error {}

export interface KeyUi {
  /** Shows a new recovery key once; resolves when the person says it is kept safe. */
  showRecoveryKey(encoded: string): Promise<void>;
  /** Asks for the recovery key (with the previous attempt's error); null: not now. */
  askRecoveryKey(error?: string): Promise<string | null>;
  /** Says how many earlier messages came back. */
  restored(count: number): void;
}

export class KeyKeeper {
  private cached: { keyId: string; key: Uint8Array } | null = null;
  private client: MatrixClient | null = null;
  ready = false;

  constructor(private readonly ui: KeyUi) {}

  /** The crypto callback for a key just created: keep it while this page runs. */
  cacheSecretStorageKey = (keyId: string, _info: unknown, key: Uint8Array): void => {
    this.cached = { keyId, key };
  };

  /** The crypto callback: hands the recovery key to the SDK while this page holds it. */
  getSecretStorageKey = async ({
    keys,
  }: {
    keys: Record<string, unknown>;
  }): Promise<[string, Uint8Array<ArrayBuffer>] | null> => {
    if (!this.cached) return null;
    const keyId = keys[this.cached.keyId] ? this.cached.keyId : Object.keys(keys)[0];
    return [keyId, this.cached.key as Uint8Array<ArrayBuffer>];
  };

  async start(client: MatrixClient): Promise<void> {
    this.client = client;
    const crypto = client.getCrypto();
    if (!crypto) throw new Error("no crypto");
    const userId = client.getSafeUserId();
    // A return visit on a device that holds every key: nothing to ask the server (asking if
    // the account has cross-signing keys downloads its own device keys on every page load).
    if (await this.holdsAllKeys(client)) {
      await this.resume(client);
      return;
    }
    // Set-up runs once per person: an account that already has keys is only unlocked.
    const hasKeys = await crypto.userHasCrossSigningKeys(userId, true);
    if (!hasKeys && !(await crypto.getKeyBackupInfo())) {
      await this.firstUse(client);
      return;
    }
    if (await this.holdsAllKeys(client)) {
      await this.resume(client);
      return;
    }
    await this.askUntilUnlocked();
  }

  /** This device holds the cross-signing private keys and the backup's key (set up or unlocked
   * here before), all in the local crypto store. */
  private async holdsAllKeys(client: MatrixClient): Promise<boolean> {
    const crypto = client.getCrypto()!;
    const local = (await crypto.getCrossSigningStatus()).privateKeysCachedLocally;
    return (
      local.masterKey &&
      local.selfSigningKey &&
      local.userSigningKey &&
      (await crypto.getSessionBackupPrivateKey()) !== null
    );
  }

  private async resume(client: MatrixClient): Promise<void> {
    await client.getCrypto()!.checkKeyBackupAndEnable();
    const last = storage.dehydratedAt(client.getSafeUserId()) ?? 0;
    if (Date.now() - last > DEHYDRATION_INTERVAL_MS) {
      await this.dehydrate(client, { onlyIfKeyCached: true, rehydrate: false });
    }
    this.ready = true;
  }

  /** Asks for the recovery key until it is right or the person says not now. */
  async askUntilUnlocked(): Promise<boolean> {
    let error: string | undefined;
    for (;;) {
      const entered = await this.ui.askRecoveryKey(error);
      if (entered === null) return false;
      try {
        await this.unlock(entered);
        return true;
      } catch (e) {
        if (!(e instanceof WrongKey)) throw e;
        error = e.message;
      }
    }
  }

  private async firstUse(client: MatrixClient): Promise<void> {
    const crypto = client.getCrypto()!;
    const generated = await crypto.createRecoveryKeyFromPassphrase();
    // The first upload of cross-signing keys needs no password (MSC3967).
    await crypto.bootstrapCrossSigning({
      authUploadDeviceSigningKeys: async (makeRequest) => {
        await makeRequest(null);
      },
    });
    await crypto.bootstrapSecretStorage({
      createSecretStorageKey: async () => generated,
      setupNewSecretStorage: true,
      setupNewKeyBackup: true,
    });
    await this.dehydrate(client, { createNewKey: true, rehydrate: false });
    this.ready = true;
    await this.ui.showRecoveryKey(generated.encodedPrivateKey ?? "");
  }

  async unlock(entered: string): Promise<void> {
    const client = this.client!;
    const crypto = client.getCrypto()!;
    let key: Uint8Array;
    try {
      key = decodeRecoveryKey(entered.trim());
    } catch {
      throw new WrongKey(
        __("That is not a recovery key. Check that you typed or pasted all of it, then try again."),
      );
    }
    const def = await client.secretStorage.getKey();
    if (!def) throw new WrongKey(__("Your account has no recovery key to check against."));
    const [keyId, info] = def;
    if (!(await client.secretStorage.checkKey(key as Uint8Array<ArrayBuffer>, info))) {
      throw new WrongKey(
        __("This recovery key does not belong to your account. Check it and try again."),
      );
    }
    this.cached = { keyId, key };
    await crypto.userHasCrossSigningKeys(client.getSafeUserId(), true);
    await crypto.bootstrapCrossSigning({});
    await crypto.loadSessionBackupPrivateKeyFromSecretStorage();
    await crypto.checkKeyBackupAndEnable();
    // Keys the dehydrated device received while no browser was open, then the backup.
    await this.dehydrate(client, { rehydrate: true });
    const result = await crypto.restoreKeyBackup();
    this.ready = true;
    this.ui.restored(result.imported);
  }

  private async dehydrate(
    client: MatrixClient,
    opts: { createNewKey?: boolean; onlyIfKeyCached?: boolean; rehydrate?: boolean },
  ): Promise<void> {
    const crypto = client.getCrypto()!;
    try {
      if (await crypto.isDehydrationSupported()) {
        await crypto.startDehydration(opts);
        storage.setDehydrated(client.getSafeUserId(), Date.now());
      }
    } catch (e) {
      // Without it the backup still holds what this browser received.
      console.warn("firm-chat: device dehydration unavailable", (e as Error).name);
    }
  }
}
