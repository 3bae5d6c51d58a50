{
  "targets": [
    {
      "target_name": "ssql_cpu",
      "sources": ["<!@(node -p \"require('fs').readdirSync('native/cpu').filter(f => f.endsWith('.cc')).map(f => 'native/cpu/' + f).join(' ')\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2"],
      "cflags_cc": ["-std=c++17", "-O3", "-fopenmp", "-fexceptions", "-Wall", "-Wno-sign-compare", "-fvisibility=hidden", "-fvisibility-inlines-hidden"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldnnl", "-lgomp", "-ljpeg", "-lpng", "-lgloo"]
    }
  ]
}
