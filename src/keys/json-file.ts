/**
 * A key source read from a local file (a JWK Set, a SPIFFE bundle): the file's JSON, with
 * errors that name the file, never its content (it may hold private material by mistake).
 */
import { readFile } from 'node:fs/promises';

export async function readJsonFile(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`${file} is not JSON`, { cause: err });
  }
}
