/**
 * Where the PBX finds its users. The account store (SQLite) implements this interface elsewhere; the
 * PBX only needs to look users up by the user part of a SIP URI or a digest username.
 */
export interface PbxUser {
  /** Account name (e.g. "alice"). */
  name: string;
  /** Phone extension (e.g. "1001"): the SIP user part phones register with. */
  extension: string;
  /** Digest password for SIP. */
  sipPassword: string;
  /** Display name for From headers; defaults to the name. */
  displayName?: string;
}

export interface UserDirectory {
  /** The user whose extension (or, failing that, account name) is `userPart`. */
  findUser(userPart: string): PbxUser | undefined;
}

export class InMemoryUserDirectory implements UserDirectory {
  private readonly byExtension = new Map<string, PbxUser>();
  private readonly byName = new Map<string, PbxUser>();

  constructor(users: Iterable<PbxUser> = []) {
    for (const u of users) this.add(u);
  }

  add(user: PbxUser): void {
    if (this.byExtension.has(user.extension)) throw new Error(`extension ${user.extension} already exists`);
    this.byExtension.set(user.extension, user);
    this.byName.set(user.name, user);
  }

  remove(extension: string): void {
    const u = this.byExtension.get(extension);
    if (u === undefined) return;
    this.byExtension.delete(extension);
    this.byName.delete(u.name);
  }

  findUser(userPart: string): PbxUser | undefined {
    return this.byExtension.get(userPart) ?? this.byName.get(userPart);
  }

  list(): PbxUser[] {
    return [...this.byExtension.values()];
  }
}
