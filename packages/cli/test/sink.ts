/** A writable stream that keeps what is written, for checking a command's output. */
export function sink(): NodeJS.WritableStream & { text: string } {
  let text = "";
  return {
    write(s: string) {
      text += s;
      return true;
    },
    get text() {
      return text;
    },
  } as unknown as NodeJS.WritableStream & { text: string };
}
