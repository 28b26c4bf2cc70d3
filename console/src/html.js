// htm bound to Preact: templates build elements and text nodes, never HTML strings, so every
// value from the API is rendered as text. Nothing in the console uses dangerouslySetInnerHTML.
import { h } from "preact";
import htm from "htm";

export const html = htm.bind(h);
