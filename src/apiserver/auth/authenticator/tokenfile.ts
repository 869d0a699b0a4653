/**
 * Static bearer tokens (`--token-auth-file`), as upstream's tokenfile authenticator: a CSV file of
 * `token,user,uid[,"group1,group2"]` records, read with the rules (and the error messages) of
 * Go's encoding/csv.
 */
import fs from "node:fs";
import type { TokenAuthenticator, TokenResult, UserInfo } from "../types.js";

export class CSVParseError extends Error {
  override readonly name = "CSVParseError";
}

const BARE_QUOTE = 'bare " in non-quoted-field';
const QUOTE = 'extraneous or missing " in quoted-field';

/**
 * Records of CSV text as Go's csv.Reader reads them (FieldsPerRecord -1, no lazy quotes, no
 * comments): empty lines are skipped, quoted fields may hold commas, newlines and doubled quotes.
 */
export function parseCSV(text: string): string[][] {
  const records: string[][] = [];
  const lines = text.split("\n");
  let lineNo = 0;
  let i = 0;
  while (i < lines.length) {
    let line = lines[i]!;
    lineNo = i + 1;
    i++;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line === "" && i === lines.length) break;
    if (line === "") continue;
    const recLine = lineNo;
    const fields: string[] = [];
    let pos = 0;
    for (;;) {
      if (line[pos] !== '"') {
        // Unquoted field up to the next comma.
        const comma = line.indexOf(",", pos);
        const field = comma < 0 ? line.slice(pos) : line.slice(pos, comma);
        const q = field.indexOf('"');
        if (q >= 0)
          throw parseError(
            recLine,
            lineNo,
            Buffer.byteLength(line.slice(0, pos + q)) + 1,
            BARE_QUOTE,
          );
        fields.push(field);
        if (comma < 0) break;
        pos = comma + 1;
        continue;
      }
      // Quoted field, possibly over several lines.
      let field = "";
      pos++;
      for (;;) {
        const q = line.indexOf('"', pos);
        if (q < 0) {
          field += line.slice(pos);
          // End of input inside quotes: reported after the last line read, newline included.
          if (i >= lines.length)
            throw parseError(recLine, lineNo, Buffer.byteLength(line) + 1, QUOTE);
          if (i === lines.length - 1 && lines[i] === "") {
            throw parseError(recLine, lineNo, Buffer.byteLength(line) + 2, QUOTE);
          }
          field += "\n";
          line = lines[i]!;
          if (line.endsWith("\r")) line = line.slice(0, -1);
          lineNo = i + 1;
          i++;
          pos = 0;
          continue;
        }
        field += line.slice(pos, q);
        const after = line[q + 1];
        if (after === '"') {
          field += '"';
          pos = q + 2;
          continue;
        }
        if (after === "," || after === undefined) {
          pos = q + 1;
          break;
        }
        throw parseError(recLine, lineNo, Buffer.byteLength(line.slice(0, q)) + 1, QUOTE);
      }
      fields.push(field);
      if (line[pos] === ",") {
        pos++;
        continue;
      }
      break;
    }
    records.push(fields);
  }
  return records;
}

function parseError(startLine: number, line: number, column: number, why: string): CSVParseError {
  if (startLine !== line) {
    return new CSVParseError(
      `record on line ${startLine}; parse error on line ${line}, column ${column}: ${why}`,
    );
  }
  return new CSVParseError(`parse error on line ${line}, column ${column}: ${why}`);
}

export class TokenFileAuthenticator implements TokenAuthenticator {
  /** Problems that do not stop the server (empty or repeated tokens), for its log. */
  readonly warnings: string[] = [];
  private readonly tokens = new Map<string, UserInfo>();

  /** Parses the file's text; `path` names the file in errors. */
  constructor(text: string, path = "") {
    let recordNum = 0;
    for (const record of parseCSV(text)) {
      if (record.length < 3) {
        throw new Error(
          `token file '${path}' must have at least 3 columns (token, user name, user uid), found ${record.length}`,
        );
      }
      recordNum++;
      const [token, name, uid] = record as [string, string, string];
      if (token === "") {
        this.warnings.push(
          `empty token has been found in token file '${path}', record number '${recordNum}'`,
        );
        continue;
      }
      if (this.tokens.has(token)) {
        this.warnings.push(
          `duplicate token has been found in token file '${path}', record number '${recordNum}'`,
        );
      }
      const user: UserInfo = {
        username: name,
        uid,
        groups: record.length >= 4 ? record[3]!.split(",") : [],
      };
      this.tokens.set(token, user);
    }
  }

  static fromFile(path: string): TokenFileAuthenticator {
    let text: string;
    try {
      text = fs.readFileSync(path, "utf8");
    } catch (err) {
      throw new Error(`open ${path}: ${osErrorText(err as NodeJS.ErrnoException)}`);
    }
    return new TokenFileAuthenticator(text, path);
  }

  get size(): number {
    return this.tokens.size;
  }

  authenticateToken(token: string): TokenResult | null {
    const user = this.tokens.get(token);
    return user ? { user } : null;
  }
}

/** An OS error as Go prints it (`no such file or directory`). */
export function osErrorText(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case "ENOENT":
      return "no such file or directory";
    case "EACCES":
      return "permission denied";
    case "EISDIR":
      return "is a directory";
    default:
      return err.message;
  }
}
