import csv, sys
fn=sys.argv[1]; step=int(sys.argv[2]) if len(sys.argv)>2 else 100
rows=list(csv.reader(open(fn)))
hdr=rows[1]; data=rows[2:]
ix={h:i for i,h in enumerate(hdr)}
def f(r,k):
    try: return float(r[ix[k]].replace(',',''))
    except: return 0.0
tot=sum(f(r,'Warp Stall Sampling (All Samples)') for r in data)
for a in range(0,len(data),step):
    seg=data[a:a+step]
    s=sum(f(r,'Warp Stall Sampling (All Samples)') for r in seg)
    l=sum(f(r,'stall_long_sb') for r in seg)
    ex=sum(f(r,'Instructions Executed') for r in seg)
    ops=' '.join(sorted(set(r[ix['Source']].split()[0] if not r[ix['Source']].strip().startswith('@') else r[ix['Source']].split()[1] for r in seg if any(k in r[ix['Source']] for k in ('LDG','BRA','STG','LDL','MUFU')))))
    print(f"{a:5d} all {100*s/tot:5.1f}% lsb {100*l/tot:5.1f}% exec {ex:12.0f}  {ops[:80]}")
