// Entry point: one chat per portal page (the first mount point the plugin rendered).
import { ChatApp } from "./app";
import "./style.css";

const mount = document.querySelector<HTMLElement>(".firm-chat[data-session-url]");
if (mount) {
  const app = new ChatApp(mount);
  void app.start();
}
