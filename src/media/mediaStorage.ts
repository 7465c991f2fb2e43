/**
 * Media storage for signed content (ЕСОЗ keeps it in a bucket, MEDIA_STORAGE_DEVICE_DISPENSE_BUCKET).
 * A port with a filesystem adapter under DATA_DIR; links are `media://<bucket>/<path>`.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';

export interface MediaStorage {
  /**
   * Stores `content` and returns the link to it. Idempotent by key: saving the same content at the same
   * path again returns the same link; other content at a taken path is refused (signed content is never overwritten).
   */
  save(bucket: string, path: string, content: string): Promise<string>;
  read(link: string): Promise<string>;
}

const SAFE_SEGMENT = /^[A-Za-z0-9._-]+$/;

export function createFilesystemMediaStorage(root: string): MediaStorage {
  const locate = (bucket: string, path: string) => {
    const segments = [bucket, ...path.split('/')];
    if (!segments.every((s) => SAFE_SEGMENT.test(s) && s !== '.' && s !== '..')) throw new Error(`Unsafe media path ${bucket}/${path}`);
    const file = normalize(join(root, ...segments));
    if (!file.startsWith(normalize(root) + sep)) throw new Error(`Unsafe media path ${bucket}/${path}`);
    return file;
  };
  return {
    async save(bucket, path, content) {
      const file = locate(bucket, path);
      await mkdir(dirname(file), { recursive: true });
      const link = `media://${bucket}/${path}`;
      try {
        await writeFile(file, content, { flag: 'wx' }); // never overwrite signed content
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || (await readFile(file, 'utf8')) !== content) throw error;
      }
      return link;
    },
    async read(link) {
      const match = /^media:\/\/([^/]+)\/(.+)$/.exec(link);
      if (!match) throw new Error(`Not a media link: ${link}`);
      return readFile(locate(match[1]!, match[2]!), 'utf8');
    },
  };
}
