/** Name and version from package.json, found from src/ (tsx) and from dist/ (compiled) alike. */
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string; description?: string };

export const packageInfo = { name: pkg.name, version: pkg.version, description: pkg.description ?? '' };
