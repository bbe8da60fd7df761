// Starting a conversation: WordPress relays the bridge's answer of whom the role table lets this
// person talk to (GET firm-bridge/v1/chat-contacts, for the logged-in person only), and only those
// are offered. The room is made encrypted (the firm's homeserver module forces it anyway) and
// direct (m.direct on both sides); the homeserver refuses anyone outside the table regardless.
// Invitations from others are accepted on arrival: the homeserver lets only permitted people
// invite, and a client should simply see the conversation their attorney started.
import { ClientEvent, EventType, KnownMembership, type MatrixClient, Preset, type Room } from "matrix-js-sdk";
import { clear, h, uid } from "./dom";
import { __, sprintf } from "./i18n";

export interface Contact {
  user_id: string;
  display_name: string;
  role: string;
  scheduling: boolean;
}

const PURPOSE_KEY = "org.firm.purpose";
function roleLabel(role: string): string {
  switch (role) {
    case "partner":
      return __("Partner");
    case "associate":
      return __("Associate");
    case "paralegal":
      return __("Paralegal");
    case "assistant":
      return __("Legal assistant");
    case "client":
      return __("Client");
    default:
      return role;
  }
}

export async function fetchContacts(restUrl: string, nonce: string): Promise<Contact[]> {
  const r = await fetch(`${restUrl}chat-contacts`, {
    credentials: "same-origin",
    headers: { "X-WP-Nonce": nonce, Accept: "application/json" },
  });
  const body = (await r.json().catch(() => ({}))) as { contacts?: Contact[]; message?: string };
  if (!r.ok || !Array.isArray(body.contacts)) {
    throw new Error(body.message || __("The people you can write to cannot be listed right now. Please try again shortly."));
  }
  return body.contacts;
}

/** The room this person already has with `userId` alone (m.direct, still joined by both). */
export function existingDirect(client: MatrixClient, userId: string): Room | null {
  const direct = (client.getAccountData(EventType.Direct)?.getContent() ?? {}) as Record<string, string[]>;
  for (const roomId of direct[userId] ?? []) {
    const room = client.getRoom(roomId);
    if (!room || room.getMyMembership() !== KnownMembership.Join) continue;
    const other = room.getMember(userId)?.membership;
    if (other === KnownMembership.Join || other === KnownMembership.Invite) return room;
  }
  return null;
}

async function markDirect(client: MatrixClient, userId: string, roomId: string): Promise<void> {
  const direct = { ...((client.getAccountData(EventType.Direct)?.getContent() ?? {}) as Record<string, string[]>) };
  const rooms = direct[userId] ?? [];
  if (rooms.includes(roomId)) return;
  direct[userId] = [...rooms, roomId];
  await client.setAccountData(EventType.Direct, direct as never);
}

/** Makes the direct conversation and resolves with the room once the client holds it. */
export async function startDirect(client: MatrixClient, contact: Contact): Promise<Room> {
  const { room_id: roomId } = await client.createRoom({
    preset: Preset.TrustedPrivateChat,
    is_direct: true,
    invite: [contact.user_id],
    initial_state: [
      { type: EventType.RoomEncryption, state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
    ],
    // People whom the role table lets meet only to arrange appointments (legal assistants and
    // clients) get a room marked for scheduling.
    ...(contact.scheduling ? { creation_content: { [PURPOSE_KEY]: "scheduling" } } : {}),
  });
  await markDirect(client, contact.user_id, roomId);
  return await roomArrives(client, roomId);
}

function roomArrives(client: MatrixClient, roomId: string): Promise<Room> {
  const have = client.getRoom(roomId);
  if (have) return Promise.resolve(have);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off(ClientEvent.Room, onRoom);
      reject(new Error("the new room did not arrive"));
    }, 30000);
    const onRoom = (room: Room) => {
      if (room.roomId !== roomId) return;
      clearTimeout(timer);
      client.off(ClientEvent.Room, onRoom);
      resolve(room);
    };
    client.on(ClientEvent.Room, onRoom);
  });
}

/** Joins a room someone invited this person to; a direct one is marked as such. */
export async function acceptInvite(client: MatrixClient, room: Room): Promise<void> {
  const me = client.getSafeUserId();
  const invite = room.currentState.getStateEvents(EventType.RoomMember, me);
  try {
    await client.joinRoom(room.roomId);
    if (invite?.getContent().is_direct && invite.getSender()) await markDirect(client, invite.getSender()!, room.roomId);
  } catch (e) {
    // Refused by the homeserver (the role table changed meanwhile): leave the invitation.
    console.warn("firm-chat: invitation not accepted", (e as Error).name);
  }
}

/** The "New conversation" form: the permitted people, one to choose. */
export function newConversationForm(
  contacts: Contact[],
  onStart: (c: Contact) => Promise<void>,
  onCancel: () => void,
): HTMLElement {
  const heading = uid("fc-new");
  const select = h("select", { id: uid("fc-person"), class: "fc-input", required: true });
  for (const c of contacts) {
    select.appendChild(h("option", { value: c.user_id }, sprintf(__("%1$s (%2$s)"), c.display_name, roleLabel(c.role))));
  }
  const error = h("p", { class: "fc-error", role: "alert" });
  const start = h("button", { type: "submit", class: "fc-button" }, __("Start conversation"));
  const form = h(
    "form",
    { class: "fc-card fc-new", "aria-labelledby": heading },
    h("h3", { id: heading }, __("New conversation")),
    contacts.length
      ? h("label", { for: select.id }, __("Write to"))
      : h("p", {}, __("There is nobody you can start a conversation with.")),
    contacts.length ? select : null,
    error,
    h(
      "div",
      { class: "fc-actions" },
      contacts.length ? start : null,
      h("button", { type: "button", class: "fc-button fc-secondary", onclick: onCancel }, __("Cancel")),
    ),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const chosen = contacts.find((c) => c.user_id === select.value);
    if (!chosen) return;
    start.disabled = true;
    clear(error);
    onStart(chosen).catch(() => {
      start.disabled = false;
      error.textContent = __("The conversation could not be started. Please try again.");
    });
  });
  return form;
}
