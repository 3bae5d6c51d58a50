// The observers live in lib/quant/observers/ (one file each); this module keeps `./observers` importable as before
// (and overwrites any compiled observers.js of the single-file version, which would otherwise shadow the folder).
export * from "./observers/index";
