/** Paging of the read-model searches: which page to read, and one page of results with the total. */
export type Page = { page: number; pageSize: number };
export type PageOf<T> = { items: T[]; total: number };
