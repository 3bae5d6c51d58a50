/** A file that cannot be read as what it claims to be; the message starts with the file's name. */
export class FileFormatError extends Error {
  readonly file: string;
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "FileFormatError";
    this.file = file;
  }
}
