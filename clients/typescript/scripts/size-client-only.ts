// What an app that only constructs the client pulls in (tree-shaken).
export { AutoSDLCWebSocketClient } from '../src/client.js';
