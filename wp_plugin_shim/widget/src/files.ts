// Attachments: each file is encrypted on the device (an EncryptedFile, AES-CTR) before upload;
// photos are first re-encoded with their orientation applied, which leaves every piece of
// metadata behind (GPS position, camera, author). The upload names its room
// (`org.firm.room_id`), so the firm's media gateway serves the ciphertext only to that room.
import type { MatrixClient, Room } from "matrix-js-sdk";
import { decryptAttachment, encryptAttachment, type IEncryptedFile } from "matrix-encrypt-attachment";
import type { ChatApp } from "./app";
import { append, clear, h, uid } from "./dom";
import { __, sprintf } from "./i18n";

/** Image types the browser can decode and re-encode as themselves. */
const STRIPPABLE = new Set(["image/jpeg", "image/png", "image/webp"]);

function sizeText(bytes: number): string {
  if (bytes >= 1024 * 1024) return sprintf(__("%s MB"), (bytes / 1024 / 1024).toFixed(1));
  return sprintf(__("%s KB"), Math.max(1, Math.round(bytes / 1024)));
}

interface Stripped {
  data: Blob;
  mimetype: string;
  w?: number;
  h?: number;
  note?: string;
}

/** A JPEG without its APPn (EXIF, XMP, the encoder's ICC profile…) and comment segments:
 * only JFIF and what decoding needs stay. */
export function jpegImageOnly(data: Uint8Array): Uint8Array {
  if (data[0] !== 0xff || data[1] !== 0xd8) return data;
  const parts: Uint8Array[] = [data.subarray(0, 2)];
  let i = 2;
  while (i + 4 <= data.length && data[i] === 0xff) {
    const marker = data[i + 1];
    if (marker === 0xda) {
      parts.push(data.subarray(i)); // start of scan: the image data to the end
      break;
    }
    const len = (data[i + 2] << 8) | data[i + 3];
    const isApp = marker >= 0xe1 && marker <= 0xef;
    if (!isApp && marker !== 0xfe) parts.push(data.subarray(i, i + 2 + len));
    i += 2 + len;
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A PNG with only the chunks that draw it (no text, time, colour profile or EXIF chunks). */
export function pngImageOnly(data: Uint8Array): Uint8Array {
  const keep = new Set(["IHDR", "PLTE", "tRNS", "IDAT", "IEND"]);
  const parts: Uint8Array[] = [data.subarray(0, 8)];
  let i = 8;
  while (i + 12 <= data.length) {
    const len = ((data[i] << 24) | (data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3]) >>> 0;
    const type = String.fromCharCode(...data.subarray(i + 4, i + 8));
    if (keep.has(type)) parts.push(data.subarray(i, i + 12 + len));
    i += 12 + len;
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** What the first bytes say a file is: the image types the widget knows by their signature
 * (the browser's `type` comes from the file name, which may be wrong or missing). */
export function sniffImage(head: Uint8Array): string | null {
  const ascii = (from: number, to: number) => String.fromCharCode(...head.subarray(from, to));
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "image/jpeg";
  if (ascii(0, 8) === "\x89PNG\r\n\x1a\n") return "image/png";
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "image/webp";
  if (ascii(0, 4) === "GIF8") return "image/gif";
  if (ascii(0, 2) === "BM") return "image/bmp";
  if (ascii(0, 4) === "II*\0" || ascii(0, 4) === "MM\0*") return "image/tiff";
  // ISO base media (HEIF): a box of type ftyp whose major brand names the image format.
  if (ascii(4, 8) === "ftyp") {
    const brand = ascii(8, 12);
    if (["heic", "heix", "heim", "heis", "hevc", "hevx"].includes(brand)) return "image/heic";
    if (["mif1", "msf1", "heif"].includes(brand)) return "image/heif";
    if (["avif", "avis"].includes(brand)) return "image/avif";
  }
  return null;
}

/** Re-encodes a photo from its decoded pixels, upright: nothing but the pixels survives.
 * Any other image (HEIC, GIF, TIFF…, or one the browser cannot redraw) goes as a file, with a
 * note that its details were not removed; the content's signature decides, not the name. */
async function strip(file: File): Promise<Stripped> {
  const sniffed = sniffImage(new Uint8Array(await file.slice(0, 16).arrayBuffer()));
  const asFile = (): Stripped => ({
    data: file,
    mimetype: sniffed ?? file.type,
    note: __("This picture was sent as a file: the browser cannot remove its details (such as where it was taken)."),
  });
  if (sniffed === null && !file.type.startsWith("image/")) {
    return { data: file, mimetype: file.type || "application/octet-stream" };
  }
  if (sniffed === null || !STRIPPABLE.has(sniffed)) return asFile();
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return asFile(); // a signature the decoder does not take (damaged, or a variant it lacks)
  }
  const type = sniffed;
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext("2d")!.drawImage(bitmap, 0, 0);
  bitmap.close();
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, type, 0.92));
  if (!blob) throw new Error("re-encoding failed");
  // The encoder adds a colour profile of its own: that goes too.
  let bytes: Uint8Array = new Uint8Array(await blob.arrayBuffer());
  if (type === "image/jpeg") bytes = jpegImageOnly(bytes);
  if (type === "image/png") bytes = pngImageOnly(bytes);
  return { data: new Blob([bytes as Uint8Array<ArrayBuffer>], { type }), mimetype: type, w: canvas.width, h: canvas.height };
}

/** Files dropped on `el` go to the room open at that moment (`target()`; null: none may be sent
 * there, say a closed matter). One set of listeners for the pane's whole life: the pane stays
 * while rooms change. */
export function dropFiles(el: HTMLElement, target: () => Attachments | null): void {
  el.addEventListener("dragover", (ev) => {
    if (ev.dataTransfer?.types.includes("Files") && target()) {
      ev.preventDefault();
      el.classList.add("fc-dragging");
    }
  });
  el.addEventListener("dragleave", () => el.classList.remove("fc-dragging"));
  el.addEventListener("drop", (ev) => {
    el.classList.remove("fc-dragging");
    const file = ev.dataTransfer?.files?.[0];
    const to = target();
    if (!file || !to) return;
    ev.preventDefault();
    void to.send(file);
  });
}

export class Attachments {
  readonly button: HTMLElement;
  readonly panel: HTMLElement;
  private readonly input: HTMLInputElement;
  private limit: number | null = null;

  constructor(
    private readonly app: ChatApp,
    private readonly client: MatrixClient,
    private readonly room: Room,
  ) {
    this.input = h("input", { type: "file", class: "fc-file-input", id: uid("fc-file"), tabindex: "-1", "aria-hidden": "true" });
    this.input.addEventListener("change", () => {
      const file = this.input.files?.[0];
      this.input.value = "";
      if (file) void this.send(file);
    });
    this.button = h(
      "span",
      {},
      this.input,
      h("button", { type: "button", class: "fc-button fc-secondary fc-attach", onclick: () => this.input.click() }, __("Attach a file")),
    );
    this.panel = h("div", { class: "fc-upload", "aria-live": "polite" });
    void this.loadLimit();
  }

  private async loadLimit(): Promise<void> {
    try {
      const config = await this.client.getMediaConfig(true);
      this.limit = config["m.upload.size"] ?? null;
    } catch {
      this.limit = null;
    }
    if (this.limit) {
      clear(this.panel, h("p", { class: "fc-hint" }, sprintf(__("Files up to %s. Photos are sent without their location and camera details."), sizeText(this.limit))));
    }
  }

  private say(text: string, error = false): void {
    clear(this.panel, h("p", { class: error ? "fc-error" : "fc-hint", role: error ? "alert" : undefined }, text));
  }

  async send(file: File): Promise<void> {
    if (this.limit && file.size > this.limit) {
      this.say(sprintf(__("%1$s is too large: files can be up to %2$s."), file.name, sizeText(this.limit)), true);
      return;
    }
    const progress = h("progress", { max: "100", value: "0", "aria-label": sprintf(__("Sending %s"), file.name) });
    clear(this.panel, h("p", {}, sprintf(__("Preparing %s…"), file.name)), progress);
    try {
      const ready = await strip(file);
      const plain = await ready.data.arrayBuffer();
      if (this.limit && plain.byteLength > this.limit) {
        this.say(sprintf(__("%1$s is too large: files can be up to %2$s."), file.name, sizeText(this.limit)), true);
        return;
      }
      const { data, info } = await encryptAttachment(plain);
      const mxc = await this.upload(data, (done) => {
        progress.value = Math.round(done * 100);
      });
      const isImage = ready.w !== undefined;
      const content: Record<string, unknown> = {
        msgtype: isImage ? "m.image" : "m.file",
        body: file.name,
        filename: file.name,
        info: { mimetype: ready.mimetype, size: plain.byteLength, ...(isImage ? { w: ready.w, h: ready.h } : {}) },
        file: { ...info, url: mxc },
      };
      await this.client.sendMessage(this.room.roomId, content as never);
      if (ready.note) {
        await this.client.sendTextMessage(this.room.roomId, ready.note);
      }
      this.say(sprintf(__("%s sent."), file.name));
    } catch (e) {
      const status = (e as { status?: number }).status;
      const text =
        status === 413
          ? sprintf(__("%s is too large for the server."), file.name)
          : status === 415
            ? sprintf(__("Files of this type cannot be sent: %s."), file.name)
            : sprintf(__("%s could not be sent. Please try again."), file.name);
      console.warn("firm-chat: upload failed", status ?? (e as Error).name);
      this.say(text, true);
    }
  }

  /** Uploads ciphertext with progress; the room goes with it for the media gateway. */
  private upload(data: ArrayBuffer, onProgress: (fraction: number) => void): Promise<string> {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const url = `${this.client.baseUrl}/_matrix/media/v3/upload?org.firm.room_id=${encodeURIComponent(this.room.roomId)}`;
      xhr.open("POST", url);
      xhr.setRequestHeader("Authorization", `Bearer ${this.client.getAccessToken()}`);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.timeout = 10 * 60 * 1000;
      xhr.upload.onprogress = (ev) => {
        if (ev.lengthComputable) onProgress(ev.loaded / ev.total);
      };
      xhr.onload = () => {
        try {
          const uri = (JSON.parse(xhr.responseText) as { content_uri?: string }).content_uri;
          if (xhr.status === 200 && uri) resolve(uri);
          else reject(Object.assign(new Error("upload refused"), { status: xhr.status }));
        } catch {
          reject(Object.assign(new Error("upload refused"), { status: xhr.status }));
        }
      };
      xhr.onerror = xhr.ontimeout = () => reject(new Error("upload failed"));
      xhr.send(new Blob([data]));
    });
  }

  /** Downloads and decrypts an attachment (checking its hash). */
  async fetchPlain(file: IEncryptedFile & { url: string }): Promise<ArrayBuffer> {
    const m = /^mxc:\/\/([^/]+)\/([^/?#]+)$/.exec(file.url);
    if (!m) throw new Error("bad address");
    const url = `${this.client.baseUrl}/_matrix/client/v1/media/download/${encodeURIComponent(m[1])}/${encodeURIComponent(m[2])}`;
    const r = await fetch(url, { headers: { Authorization: `Bearer ${this.client.getAccessToken()}` }, signal: AbortSignal.timeout(120000) });
    if (!r.ok) throw Object.assign(new Error("download refused"), { status: r.status });
    return decryptAttachment(await r.arrayBuffer(), file);
  }

  render(content: Record<string, unknown>): HTMLElement {
    const file = content.file as IEncryptedFile & { url: string };
    const info = (content.info ?? {}) as { mimetype?: string; size?: number };
    const name = String(content.filename ?? content.body ?? __("file"));
    const mimetype = STRIPPABLE.has(info.mimetype ?? "") ? info.mimetype! : "application/octet-stream";
    const box = h("div", { class: "fc-attachment" });
    const save = h("button", { type: "button", class: "fc-link" }, sprintf(__("Download %s"), name));
    save.addEventListener("click", () => {
      void this.fetchPlain(file)
        .then((plain) => {
          const url = URL.createObjectURL(new Blob([plain], { type: mimetype }));
          const a = h("a", { href: url, download: name });
          document.body.appendChild(a);
          a.click();
          a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 10000);
        })
        .catch(() => this.app.setStatus(sprintf(__("%s could not be downloaded."), name)));
    });
    append(box, h("span", { class: "fc-file-name" }, name), info.size ? ` (${sizeText(info.size)}) ` : " ", save);
    if (content.msgtype === "m.image" && (info.size ?? 0) < 20 * 1024 * 1024) {
      void this.fetchPlain(file)
        .then((plain) => {
          const img = h("img", { class: "fc-preview", alt: name, src: URL.createObjectURL(new Blob([plain], { type: mimetype })) });
          box.prepend(img);
        })
        .catch(() => append(box, h("span", { class: "fc-error" }, __("The preview could not be loaded."))));
    }
    return box;
  }
}
