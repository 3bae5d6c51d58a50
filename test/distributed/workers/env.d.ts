declare const keys: string[];
